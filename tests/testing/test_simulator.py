"""Whole simulated calls against the fake bot over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.server import serve

from phonewire.audio.analysis import dominant_frequency, rms_dbfs, tone
from phonewire.audio.wav import read_wav
from phonewire.testing import (
    BargeIn,
    HangUp,
    Press,
    ProgressSnapshot,
    Say,
    Silence,
    TwilioClient,
    WaitForBotReply,
    WaitForHangup,
    simulate_call,
)
from testing.fake_bot import RATE, BotConfig, FakeBot, run

SAY = Say(tone(300, 0.5, RATE), label="question")
ANSWER = WaitForBotReply(timeout=5, min_silence=0.3)


async def call(config: BotConfig, script: list[Any], **kwargs: Any) -> tuple[Any, FakeBot]:
    async with FakeBot(config) as bot:
        report = await simulate_call(bot.url, script=script, **kwargs)
        if bot.calls:
            await bot.calls[0].finished.wait()
    return report, bot


def test_a_full_call_completes_with_a_plausible_turn_latency_and_a_stereo_recording(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    script = [ANSWER, SAY, ANSWER, Press("#"), WaitForHangup(3)]
    report, bot = run(call(BotConfig(greeting_s=0.3, reply_delay_s=0.1), script, record_path=path))

    assert report.completed and report.hangup == "socket_closed" and report.close_code == 1000
    assert report.errors == [] and report.protocol_violations == []
    [turn] = report.turns
    # The echo bot waits 300 ms of silence, then 100 ms: the caller hears it ~400 ms after speaking.
    assert 350 <= (turn.response_latency_ms or 0) <= 800
    assert report.marks_sent_by_server == report.marks_echoed == 2
    assert report.dtmf_sent == 1 and bot.calls[0].digits == "#"
    assert report.audio_received_s == pytest.approx(0.8, abs=0.05)  # greeting + echo
    assert report.audio_sent_s == pytest.approx(report.duration_s, abs=0.05)

    pcm, rate, channels = read_wav(path)
    assert (rate, channels) == (8000, 2)
    stereo = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2)
    left, right = stereo[:, 0].tobytes(), stereo[:, 1].tobytes()

    def window(track: bytes, start: float, end: float) -> bytes:
        return track[2 * round(start * rate) : 2 * round(end * rate)]

    speech_start = turn.caller_speech_end_s - 0.5
    assert rms_dbfs(window(left, speech_start + 0.05, speech_start + 0.45)) > -20  # the caller, left
    assert rms_dbfs(window(right, speech_start + 0.05, speech_start + 0.45)) < -60
    assert dominant_frequency(window(right, 0.05, 0.25), rate) == pytest.approx(440, abs=10)  # greeting
    echo = window(right, turn.first_bot_audio_s or 0, (turn.first_bot_audio_s or 0) + 0.4)
    assert rms_dbfs(echo) > -20 and dominant_frequency(echo, rate) == pytest.approx(300, abs=10)
    assert rms_dbfs(window(left, turn.first_bot_audio_s or 0, (turn.first_bot_audio_s or 0) + 0.4)) < -60


def test_the_wire_format_matches_twilios_message_for_message() -> None:
    script = [ANSWER, Press("5"), Silence(0.1), HangUp()]
    report, bot = run(call(BotConfig(greeting_s=0.1), script, custom_parameters={"tenant": "acme"}))
    messages = bot.calls[0].messages
    assert messages[0] == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert messages[1]["start"]["customParameters"] == {"tenant": "acme"}
    stream = messages[1]["streamSid"]

    numbered = messages[1:]
    assert [m["sequenceNumber"] for m in numbered] == [str(n) for n in range(1, len(numbered) + 1)]
    assert {m["event"] for m in numbered} == {"start", "media", "mark", "dtmf", "stop"}
    assert all(m["streamSid"] == stream for m in numbered)
    media = [m["media"] for m in numbered if m["event"] == "media"]
    assert [m["chunk"] for m in media] == [str(n) for n in range(1, len(media) + 1)]
    assert [m["timestamp"] for m in media] == [str(20 * n) for n in range(len(media))]
    assert all(set(m) == {"track", "chunk", "timestamp", "payload"} and m["track"] == "inbound" for m in media)
    assert all(len(m["payload"]) == 216 for m in media)  # 160 bytes of mu-law = 20 ms

    [mark] = [m for m in numbered if m["event"] == "mark"]
    assert mark["mark"] == {"name": "greeting"}
    [dtmf] = [m for m in numbered if m["event"] == "dtmf"]
    assert dtmf["dtmf"] == {"track": "inbound_track", "digit": "5"}
    assert numbered[-1]["event"] == "stop"
    assert numbered[-1]["stop"] == {"accountSid": messages[1]["start"]["accountSid"], "callSid": report.call_id}
    assert report.completed and report.hangup == "caller"


def test_media_flows_in_real_time_every_20_ms() -> None:
    async def scenario() -> None:
        arrivals: list[float] = []

        async def handler(ws: Any) -> None:
            async for _ in ws:
                arrivals.append(asyncio.get_running_loop().time())

        async with serve(handler, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            report = await simulate_call(f"ws://127.0.0.1:{port}/", script=[Silence(0.6)])
        span = arrivals[-2] - arrivals[2]  # from the first media to the last (stop excluded)
        assert report.completed and len(arrivals) == 2 + 30 + 1
        assert span == pytest.approx(29 * 0.02, abs=0.05)

    run(scenario())


def test_marks_are_echoed_after_their_audio_has_played_not_when_received() -> None:
    report, bot = run(call(BotConfig(greeting_s=0.4), [ANSWER]))
    start = bot.calls[0].messages[1]
    echo_index = next(i for i, m in enumerate(bot.calls[0].messages) if m.get("event") == "mark")
    media_before_echo = sum(1 for m in bot.calls[0].messages[:echo_index] if m.get("event") == "media")
    assert start["event"] == "start" and report.marks_echoed == 1
    assert 0.4 / 0.02 - 2 <= media_before_echo <= 0.4 / 0.02 + 3  # ~400 ms of caller media went by


def test_a_barge_in_is_measured_from_the_caller_speaking_to_the_bots_audio_stopping() -> None:
    script = [SAY, BargeIn(0.2, tone(500, 0.3, RATE))]
    report, bot = run(call(BotConfig(greeting_s=0, end_of_speech_s=0.2), script))
    assert report.clears_received == 1 and bot.calls[0].clears_sent == 1
    [barge_in] = report.barge_ins
    assert barge_in.latency_ms is not None and 0 <= barge_in.latency_ms <= 200
    assert report.marks_echoed == report.marks_sent_by_server  # the clear echoed the pending mark
    assert report.audio_played_s < report.audio_received_s


def test_protocol_violations_are_counted_with_twilios_codes() -> None:
    config = BotConfig(greeting_s=0, misbehave=("binary", "bad_event", "wrong_stream", "no_stream"))
    report, _ = run(call(config, [Silence(0.2)]))
    assert [v.code for v in report.protocol_violations] == [31950, 31924, 31924, 31924]
    assert report.completed  # Twilio warns; the call goes on


def test_a_bot_that_is_not_listening_gives_a_failed_report_not_an_exception() -> None:
    async def scenario() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        report = await simulate_call(f"ws://127.0.0.1:{port}/media", script=[Silence(1)])
        assert not report.completed and report.hangup == "none"
        assert "could not connect" in report.end_reason and "handshake" in report.errors[0]

    run(scenario())


def test_a_refused_handshake_gives_a_failed_report() -> None:
    async def scenario() -> None:
        def refuse(connection: Any, request: Any) -> Any:
            return connection.respond(403, "no\n")

        async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, process_request=refuse) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            report = await simulate_call(f"ws://127.0.0.1:{port}/", script=[Silence(1)])
        assert not report.completed and "403" in report.errors[0]

    run(scenario())


def test_a_bot_that_closes_with_an_error_code_fails_the_call() -> None:
    report, _ = run(call(BotConfig(greeting_s=0, misbehave=("crash",)), [Silence(2)]))
    assert not report.completed and report.hangup == "socket_closed" and report.close_code == 1011
    assert "1011" in report.end_reason and "bot crashed" in report.errors[0]


def test_the_max_duration_ends_the_call_as_not_completed() -> None:
    report, bot = run(call(BotConfig(greeting_s=0), [Silence(10)], max_duration_s=0.4))
    assert not report.completed and "max duration" in report.end_reason
    assert report.duration_s == pytest.approx(0.4, abs=0.1) and bot.calls[0].stopped


def test_a_provider_client_fixes_the_call_ids_and_signs_the_handshake() -> None:
    twilio = TwilioClient(call_sid="CAfixed", upgrade_signer=lambda url: {"X-Twilio-Signature": "sig"})
    report, bot = run(call(BotConfig(greeting_s=0), [Silence(0.1)], provider=twilio, headers={"X-Extra": "1"}))
    assert report.call_id == "CAfixed" and bot.calls[0].call_sid == "CAfixed"
    assert bot.calls[0].headers["x-twilio-signature"] == "sig" and bot.calls[0].headers["x-extra"] == "1"


def test_progress_is_reported_during_the_call() -> None:
    snapshots: list[ProgressSnapshot] = []
    run(call(BotConfig(greeting_s=0), [Silence(0.6)], progress=snapshots.append))
    assert len(snapshots) >= 2
    assert snapshots[-1].elapsed_s > snapshots[0].elapsed_s and snapshots[-1].audio_sent_s > 0.2
