"""Speech-to-speech calls end to end: real server, simulated caller (Twilio and Telnyx), and
OpenAIRealtimeLLMService against FakeRealtimeServer. Each test asserts what reached the fake
and what the caller heard."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from realtime_app import RealtimeCall, realtime_app

from phonewire.testing import BargeIn, CallSimulator, HangUp, Say, WaitForBotReply
from phonewire.testing.fakes import FakeRealtimeServer, RealtimeFault, RealtimeReply, RealtimeToolCall
from phonewire.testing.fakes.realtime_validate import validate_realtime_client_event, validate_realtime_server_event
from phonewire.testing.script import builtin_recording
from support.server_harness import serve

pytestmark = pytest.mark.slow

HELLO = builtin_recording("hello")
THANKS = builtin_recording("thanks")
GREETING = "Hello, how can I help?"
LONG = "Your order left our warehouse on Monday and it travelled through three depots before the courier took it."


async def _run(app: Any, script: list[Any], provider: str = "twilio") -> tuple[Any, CallSimulator]:
    async with serve(app) as hostport:
        sim = CallSimulator(f"ws://{hostport}/ws", provider=provider, script=script, max_duration_s=60)
        report = await sim.run()
    return report, sim


def _call(fake: FakeRealtimeServer, script: list[Any], provider: str = "twilio") -> tuple[Any, Any, RealtimeCall]:
    calls: list[RealtimeCall] = []
    report, sim = asyncio.run(_run(realtime_app(fake, calls), script, provider))
    assert report.errors == [], report.render_text()
    return report, sim, calls[0]


@pytest.mark.parametrize("provider", ["twilio", "telnyx"])
def test_a_multi_turn_call_keeps_both_sides_in_the_context(provider: str) -> None:
    with FakeRealtimeServer(
        replies=[GREETING, "Sure, what is the order number?", "You are welcome, goodbye."],
        transcripts=["I would like to know my order status.", "Thank you, that's all."],
    ) as fake:
        script = [WaitForBotReply(), Say.from_wav(HELLO), WaitForBotReply(), Say.from_wav(THANKS), WaitForBotReply()]
        report, _, call = _call(fake, [*script, HangUp()], provider)
        [session] = fake.sessions

    assert call.wire_mode and call.llm.used_prewarmed is False
    for _, event in session.client_events:  # what the service sent, against the SDK's types
        validate_realtime_client_event(event)
    for _, event in session.server_events:  # and what the fake answered
        validate_realtime_server_event(event)
    update = session.client("session.update")[0]["session"]
    assert update["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert update["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert update["tools"][0]["name"] == "get_order_status"
    answered = [t for t in report.turns if t.response_latency_ms is not None]
    assert len(answered) >= 2
    roles = [(m["role"], m["content"]) for m in call.llm.context.messages]
    assert roles == [
        ("assistant", GREETING),
        ("user", "I would like to know my order status."),
        ("assistant", "Sure, what is the order number?"),
        ("user", "Thank you, that's all."),
        ("assistant", "You are welcome, goodbye."),
    ]


def test_a_barge_in_truncates_the_reply_at_what_the_handset_played() -> None:
    with FakeRealtimeServer(
        replies=[GREETING, LONG, "Glad to help."], transcripts=["Where is my order?", "Thanks."]
    ) as fake:
        script = [WaitForBotReply(), Say.from_wav(HELLO), BargeIn.from_wav(2.0, THANKS), WaitForBotReply()]
        report, sim, call = _call(fake, [*script, HangUp()])
        [session] = fake.sessions
        [cut] = session.client("conversation.item.truncate")
        answers = session.server("conversation.item.truncated")
        errors = session.server("error")

    played = [span for span in sim._playout.spans if span.cleared]  # the handset's own playout
    assert played, "the caller's buffer was never cleared"
    played_ms = len(played[-1].pcm) / 2 / 8000 * 1000
    # Within one packet (20 ms: marks echo on the handset's 20 ms clock), plus the rounding to
    # whole ms the API requires of audio_end_ms.
    assert abs(cut["audio_end_ms"] - played_ms) <= 20 + 1, (cut, played_ms)
    assert isinstance(cut["audio_end_ms"], int) and cut["content_index"] == 0
    assert answers and answers[0]["audio_end_ms"] == cut["audio_end_ms"]  # accepted by the API's rule
    assert not [e for e in errors if e["error"]["code"] == "invalid_value"]
    [(item_id, end_ms, heard_ms, source)] = call.llm.truncations
    assert item_id == cut["item_id"] and source == "provider_ack"
    assert session.client("response.cancel") or session.server("response.done")
    assert report.barge_ins and report.barge_ins[0].latency_ms is not None
    interrupted = [m for m in call.llm.context.messages if m["role"] == "assistant" and m["content"].endswith("—")]
    assert interrupted and "courier" not in interrupted[0]["content"]


def test_a_tool_call_goes_through_register_function_and_continues_the_reply() -> None:
    tool = RealtimeReply(tool_calls=(RealtimeToolCall("get_order_status", {"order_id": "42"}),))
    with FakeRealtimeServer(replies=[GREETING, tool, "Order 42 has shipped."]) as fake:
        report, _, call = _call(fake, [WaitForBotReply(), Say.from_wav(HELLO), WaitForBotReply(), HangUp()])
        [session] = fake.sessions
        [done] = session.server("response.function_call_arguments.done")
        created = session.client("conversation.item.create")

    assert call.tool_calls == [{"order_id": "42"}]
    [output] = [c["item"] for c in created if c["item"]["type"] == "function_call_output"]
    assert output["call_id"] == done["call_id"] and "shipped" in output["output"]
    kinds = [e["type"] for _, e in session.client_events]
    assert "response.create" in kinds[kinds.index("conversation.item.create") :]
    assert call.llm.context.messages[-1] == {"role": "assistant", "content": "Order 42 has shipped."}
    assert report.turns[0].response_latency_ms is not None


def test_a_mulaw_call_is_never_decoded_resampled_or_encoded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Count every codec and resampler call made by the server side (the simulated handset and
    the fake decode for their own ears; their callers are in phonewire.testing)."""
    import sys

    from phonewire.audio import g711, resample
    from phonewire.serializers import twilio
    from phonewire.services.openai.realtime import audio as rt_audio
    from phonewire.transports import input as transport_input

    calls: list[str] = []

    def counting(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if not caller.startswith("phonewire.testing"):
                calls.append(f"{name} from {caller}")
            return fn(*args, **kwargs)

        return wrapper

    for name in ("ulaw_to_pcm", "pcm_to_ulaw", "alaw_to_pcm", "pcm_to_alaw"):
        monkeypatch.setattr(g711, name, counting(name, getattr(g711, name)))
    for name in ("ulaw_to_pcm", "pcm_to_ulaw"):
        monkeypatch.setattr(twilio, name, counting(name, getattr(twilio, name)))
    for table in (transport_input._G711, rt_audio._DECODE, rt_audio._ENCODE):
        for key, fn in list(table.items()):
            monkeypatch.setitem(table, key, counting(f"codec {key}", fn))
    monkeypatch.setattr(resample.RateConverter, "convert", counting("resample", resample.RateConverter.convert))

    with FakeRealtimeServer(replies=[GREETING, "Sure, what is the order number?"]) as fake:
        calls_out: list[RealtimeCall] = []
        app = realtime_app(fake, calls_out, vad=None)
        report, _ = asyncio.run(_run(app, [WaitForBotReply(), Say.from_wav(HELLO), WaitForBotReply(), HangUp()]))
        [session] = fake.sessions

    assert report.errors == [] and len([t for t in report.turns if t.response_latency_ms is not None]) >= 1
    assert calls == []  # not one decode, encode or resample on the server's side of the call
    [call] = calls_out
    assert call.wire_mode and call.llm._audio.passthrough_packets > 100
    assert session.state.appended_bytes == 160 * call.llm._audio.passthrough_packets


def test_a_prewarmed_session_opened_at_the_webhook_is_the_one_the_call_uses() -> None:
    import time
    import uuid
    import xml.etree.ElementTree as ET

    import httpx

    from phonewire.services.openai.realtime import RealtimeSessionConfig, open_realtime
    from phonewire.testing import TwilioClient
    from support.signed_webhooks import ACCOUNT_SID, credentials, signed_answer

    with FakeRealtimeServer(replies=[GREETING, "Sure."]) as fake:

        async def prewarm(call: Any) -> Any:
            config = RealtimeSessionConfig(instructions="You are a helpful phone agent.", tools=[])
            return await open_realtime(config, api_key="test-key", base_url=fake.base_url)

        calls: list[RealtimeCall] = []
        app = realtime_app(fake, calls, prewarm=prewarm, stream_secret="s" * 40, **credentials())

        async def main() -> tuple[Any, float]:
            async with serve(app) as hostport, httpx.AsyncClient() as http:
                sid = "CA" + uuid.uuid4().hex
                answer = await signed_answer(
                    http, f"http://{hostport}", "twilio", {"CallSid": sid, "AccountSid": ACCOUNT_SID}
                )
                stream = ET.fromstring(answer.text).find("./Connect/Stream")
                assert stream is not None
                params = {p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")}
                await fake.wait_for_async(lambda f: bool(f.sessions and f.sessions[0].server("session.updated")))
                dialled = time.monotonic()
                client = TwilioClient(account_sid=ACCOUNT_SID, call_sid=sid, custom_parameters=params)
                script = [WaitForBotReply(), Say.from_wav(HELLO), WaitForBotReply(), HangUp()]
                sim = CallSimulator(stream.get("url", ""), provider=client, script=script, max_duration_s=30)
                return await sim.run(), dialled

        report, dialled = asyncio.run(main())
        sessions = fake.sessions

    assert report.errors == [], report.render_text()
    assert len(sessions) == 1 and sessions[0].connected_at < dialled  # opened while the phone rang
    [call] = calls
    assert call.llm.used_prewarmed and call.llm.sessions_opened == 1
    assert sessions[0].client("response.create")  # the greeting came from the prewarmed session
    assert report.turns and report.turns[0].response_latency_ms is not None


def test_the_model_failing_mid_call_is_heard_as_the_apology_and_the_next_turn_works() -> None:
    with FakeRealtimeServer(
        replies=[GREETING, RealtimeFault("drop", after_chunks=2), "It shipped today."],
        transcripts=["Where is my order?", "Where is my order?"],
    ) as fake:
        script = [WaitForBotReply(), Say.from_wav(HELLO), WaitForBotReply(), Say.from_wav(HELLO), WaitForBotReply()]
        report, _, call = _call(fake, [*script, HangUp()])
        sessions = fake.sessions

    assert call.llm.apology_count == 1 and call.llm.error_counts["connection"] == 1
    answered = [t for t in report.turns if t.response_latency_ms is not None]
    assert len(answered) >= 2  # the failed turn was answered (the apology), and the next one
    assert len(sessions) == 2  # reconnected, the context replayed into the new session
    replayed = [c["item"] for c in sessions[1].client("conversation.item.create")]
    assert replayed[0]["role"] == "assistant" and replayed[0]["content"][0]["text"] == GREETING
    assert call.llm.context.messages[-1] == {"role": "assistant", "content": "It shipped today."}
