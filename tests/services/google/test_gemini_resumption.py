"""Gemini Live session resumption: the setup asks for it, ``sessionResumptionUpdate`` handles
are kept, and a ``goAway`` (or a dropped connection) moves the call to a new connection with
the latest handle, with no apology and nothing the caller said lost; a refused resumption is
audible (the apology). Real server, simulated Twilio caller, FakeGeminiLiveServer; every
message both ways validated against google-genai's own types."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from google.genai import types

from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.server import ServerConfig, create_app
from phonewire.services.google import GeminiLiveLLMService
from phonewire.services.google import live_events as le
from phonewire.testing import HangUp, Say, WaitForBotReply, simulate_call
from phonewire.testing.fakes import FakeGeminiLiveServer, GeminiSession
from phonewire.testing.script import builtin_recording
from support.server_harness import serve

HELLO = builtin_recording("hello")


def test_the_setup_asks_for_resumption_and_names_the_handle_when_resuming() -> None:
    fresh = types.LiveClientMessage.model_validate_json(le.setup("m", instructions="x", voice=None, tools=[]))
    assert fresh.setup is not None and fresh.setup.session_resumption == types.SessionResumptionConfig()
    again = le.setup("m", instructions=None, voice=None, tools=[], handle="h-7")
    resumed = types.LiveClientMessage.model_validate_json(again)
    assert resumed.setup is not None and resumed.setup.session_resumption is not None
    assert resumed.setup.session_resumption.handle == "h-7"
    off = types.LiveClientMessage.model_validate_json(
        le.setup("m", instructions=None, voice=None, tools=[], resumption=False)
    )
    assert off.setup is not None and off.setup.session_resumption is None


@pytest.mark.parametrize(
    ("message", "secs", "resumption"),
    [
        ('{"goAway":{"timeLeft":"9.5s"}}', 9.5, None),
        ('{"goAway":{"timeLeft":"50s"}}', 50.0, None),
        ('{"goAway":{}}', None, None),
        ('{"sessionResumptionUpdate":{"newHandle":"abc","resumable":true}}', None, ("abc", True)),
        ('{"sessionResumptionUpdate":{"newHandle":"","resumable":false}}', None, ("", False)),
        ('{"sessionResumptionUpdate":{}}', None, ("", False)),
    ],
)
def test_go_away_and_resumption_updates_parse_as_the_sdk_reads_them(
    message: str, secs: float | None, resumption: tuple[str, bool] | None
) -> None:
    types.LiveServerMessage.model_validate_json(message)  # a shape the SDK's types allow
    msg = le.parse_server_message(message)
    assert msg.problem is None and msg.go_away == ("goAway" in message)
    assert msg.go_away_secs == secs and msg.resumption == resumption


def test_durations_read_as_protobuf_json() -> None:
    assert [le.duration_secs(v) for v in ("1s", "0.250s", ".5s", 3, "5", "-1s", None, True)] == [
        1.0, 0.25, 0.5, 3.0, None, None, None, None,
    ]  # fmt: skip


def _call(fake: FakeGeminiLiveServer, monkeypatch: pytest.MonkeyPatch, turns: int = 2) -> tuple[Any, Any]:
    monkeypatch.setenv("GEMINI_BASE_URL", fake.base_url)
    monkeypatch.setenv("GOOGLE_API_KEY", "test-google-key")
    services: list[GeminiLiveLLMService] = []

    async def bot(transport: Any, info: Any) -> None:
        llm = GeminiLiveLLMService(instructions="You are a phone agent.", go_away_margin_secs=1.0)
        services.append(llm)
        task = PipelineTask(Pipeline([transport.input(), llm, transport.output()]))
        await PipelineRunner(handle_sigint=False, handle_sigterm=False).run(task)

    app = create_app(bot, ServerConfig(stream_scheme="ws", freeze_gc=False, vad=None))
    script: list[Any] = []
    for _ in range(turns):
        script += [Say.from_wav(HELLO), WaitForBotReply(timeout=10)]
    script.append(HangUp())

    async def main() -> Any:
        async with serve(app) as hostport:
            return await simulate_call(f"ws://{hostport}/ws", script=script, max_duration_s=40)

    report = asyncio.run(main())
    [llm] = services
    return report, llm


def _validate(sessions: list[GeminiSession]) -> None:
    for session in sessions:
        for message in session.received:
            types.LiveClientMessage.model_validate(message)
        for message in session.sent:
            types.LiveServerMessage.model_validate(message)


@pytest.mark.slow
def test_a_go_away_moves_the_call_to_a_resumed_session_without_the_caller_noticing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replies = ["Hello, how can I help?", "Sure, your order has shipped.", "Anything else?"]
    with FakeGeminiLiveServer(replies=replies, go_away_after_s=1.0, go_away_time_left_s=2.5) as fake:
        report, llm = _call(fake, monkeypatch, turns=3)
        sessions = list(fake.sessions)
    assert report.errors == [], report.render_text()
    assert len(sessions) >= 2 and llm.resumptions == len(sessions) - 1
    for before, after in zip(sessions, sessions[1:], strict=False):
        assert before.go_away_sent and after.resumed_from in before.handles  # the latest handle it had
        assert before.closed_code is None  # the client moved before the server's time ran out
        setup = after.received[0]["setup"]
        assert setup["sessionResumption"] == {"handle": after.resumed_from}
    assert llm.apology_count == 0 and not +llm.error_counts, llm.error_counts
    answered = [t for t in report.turns if t.response_latency_ms is not None]
    assert len(answered) == 3, report.render_text()
    said = [m["content"] for m in llm.context.messages if m["role"] == "assistant"]
    assert said == replies
    # the caller's audio reached a session: held during each switch and sent to the new one
    # (replays of audio after the last handle may count twice; the last few packets may go at hang-up)
    delivered = sum(1 for s in sessions for m in s.received if "realtimeInput" in m)
    assert delivered >= llm._audio_seq - 5
    _validate(sessions)


@pytest.mark.slow
def test_a_dropped_connection_is_resumed_and_the_caller_still_gets_the_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    replies = ["Hello, how can I help?", "Sure, your order has shipped."]
    with FakeGeminiLiveServer(replies=replies, drop_after_s=0.5) as fake:
        report, llm = _call(fake, monkeypatch, turns=2)
        sessions = list(fake.sessions)
    assert report.errors == [], report.render_text()
    assert len(sessions) == 2 and sessions[0].closed_code == 1006
    assert sessions[1].resumed_from == sessions[0].handles[-1]
    assert llm.resumptions == 1 and llm.apology_count == 0 and not +llm.error_counts, llm.error_counts
    assert [t.response_latency_ms is not None for t in report.turns] == [True, True], report.render_text()
    _validate(sessions)


@pytest.mark.slow
def test_a_refused_resumption_is_audible(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeGeminiLiveServer(replies=["Hello."], drop_after_s=0.5, refuse_resume=True) as fake:
        report, llm = _call(fake, monkeypatch, turns=1)
        sessions = list(fake.sessions)
    assert len(sessions) == 2 and sessions[1].closed_code == 1008
    assert llm.resumptions == 0 and llm.apology_count == 1  # the recorded apology, once
    assert llm.error_counts["resume"] == 1, llm.error_counts
    assert report.turns and report.turns[0].response_latency_ms is not None  # the apology is heard
    _validate(sessions)
