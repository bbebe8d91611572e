"""Agent calls end to end on a streaming WebSocket TTS (the Cartesia fake): real server,
simulated Twilio caller (μ-law 8 kHz), FakeOpenAIServer for STT and the LLM."""

from __future__ import annotations

import asyncio
from typing import Any
from unittest import mock

import pytest
from streaming_tts_app import GREETING, StreamingCall, streaming_tts_app

import phonewire.audio.g711 as g711
from phonewire.audio.resample import RateConverter
from phonewire.services.cartesia import CartesiaTTSService
from phonewire.testing import BargeIn, HangUp, Say, WaitForBotReply, simulate_call
from phonewire.testing.fakes import FakeOpenAIServer
from phonewire.testing.fakes.cartesia_server import FakeCartesiaServer
from phonewire.testing.fakes.ws_fake import ErrorReply
from phonewire.testing.script import builtin_recording
from support.server_harness import serve

pytestmark = pytest.mark.slow

HELLO = builtin_recording("hello")
THANKS = builtin_recording("thanks")
LONG_REPLY = (
    "Your order left our warehouse on Monday, it travelled through three depots, "
    "it is now with the local courier, and it should reach you tomorrow before noon."
)


def _call(openai: FakeOpenAIServer, cartesia: FakeCartesiaServer, script: list[Any]) -> tuple[Any, list[StreamingCall]]:
    calls: list[StreamingCall] = []

    def make_tts() -> CartesiaTTSService:
        return CartesiaTTSService(api_key="test-key", base_url=cartesia.base_url, voice_id="voice-1")

    async def main() -> Any:
        async with serve(streaming_tts_app(openai, make_tts, calls)) as hostport:
            return await simulate_call(f"ws://{hostport}/ws", script=script, max_duration_s=60)

    report = asyncio.run(main())
    assert report.errors == [], report.render_text()
    return report, calls


class _Counter:
    def __init__(self, fn: Any) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.fn(*args, **kwargs)


def test_a_call_is_answered_with_mulaw_passed_through_untouched() -> None:
    encode = _Counter(g711.pcm_to_ulaw)
    converted: list[int] = []

    class CountingConverter(RateConverter):
        def convert(self, pcm: bytes, in_rate: int) -> bytes:
            converted.append(len(pcm))
            return super().convert(pcm, in_rate)

    with FakeOpenAIServer(transcripts=["Where is my order?"], chat_replies=["It shipped today."]) as openai:
        with FakeCartesiaServer() as cartesia:
            with (
                mock.patch("phonewire.serializers.twilio.pcm_to_ulaw", encode),
                mock.patch("phonewire.transports.output.RateConverter", CountingConverter),
            ):
                report, [call] = _call(
                    openai, cartesia, [WaitForBotReply(), Say.from_wav(HELLO), WaitForBotReply(), HangUp()]
                )
            requests = [m.data for m in cartesia.received]

    assert report.turns[0].response_latency_ms is not None
    assert report.audio_received_s > 1.0
    # zero transcoding on the way out: no G.711 encode, no resampler for the bot's audio
    assert encode.calls == 0
    assert converted == []  # the output's resampler never ran
    assert all(
        r["output_format"] == {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000}
        for r in requests
        if "transcript" in r
    )
    spoken = "".join(r["transcript"] for r in requests if "transcript" in r)
    assert GREETING in spoken and "It shipped today." in spoken
    assert call.tts.connections == 1 and call.tts.error_count == 0


def test_a_barge_in_keeps_exactly_the_words_whose_audio_was_played() -> None:
    with FakeOpenAIServer(
        transcripts=["Where is my order?", "Thanks."], chat_replies=[LONG_REPLY, "Glad to help."]
    ) as openai:
        with FakeCartesiaServer(realtime=1.5) as cartesia:  # still generating at the barge-in
            script = [
                WaitForBotReply(),
                Say.from_wav(HELLO),
                BargeIn.from_wav(2.5, THANKS),
                WaitForBotReply(),
                HangUp(),
            ]
            report, [call] = _call(openai, cartesia, script)
            second = openai.chat_requests[1].json["messages"]
            reply_ctx = next(c for c in cartesia.contexts.values() if "warehouse" in "".join(c.transcripts))

    barge = report.barge_ins[0]
    assert barge.bot_silent_s is not None
    reply_turn = report.turns[0]
    assert reply_turn.first_bot_audio_s is not None
    heard_ms = (barge.bot_silent_s - reply_turn.first_bot_audio_s) * 1000
    started = [w.word for w in reply_ctx.words if w.start_ms < heard_ms]
    kept = second[3]["content"].removesuffix(" —").split()
    # exact to the word, from the service's own marks: at most the word being spoken at the cut differs
    assert kept == started or kept == started[:-1] or kept == [w.word for w in reply_ctx.words][: len(started) + 1], (
        kept,
        started,
    )
    assert 2 <= len(kept) < len(reply_ctx.words)
    # the interrupted context was cancelled at the service
    assert reply_ctx.context_id in call.tts.cancelled_contexts
    assert any(m.data == {"context_id": reply_ctx.context_id, "cancel": True} for m in cartesia.received)


def test_a_service_error_is_heard_as_an_apology_and_the_next_reply_works() -> None:
    with FakeOpenAIServer(
        transcripts=["Where is my order?", "Where is my order?"], chat_replies=["Ignored.", "It shipped today."]
    ) as openai:
        with FakeCartesiaServer() as cartesia:
            script = [
                WaitForBotReply(),
                Say.from_wav(HELLO),
                WaitForBotReply(),
                Say.from_wav(HELLO),
                WaitForBotReply(),
                HangUp(),
            ]
            report, [call] = _call_with_fault(openai, cartesia, script)

    assert call.tts.error_count == 1
    assert report.turns[0].response_latency_ms is not None  # the apology
    assert report.turns[1].response_latency_ms is not None  # the next reply works


def _call_with_fault(
    openai: FakeOpenAIServer, cartesia: FakeCartesiaServer, script: list[Any]
) -> tuple[Any, list[StreamingCall]]:
    original = cartesia.on_message
    seen = {"n": 0}

    async def on_message(ws: Any, conn: int, data: Any) -> None:
        if isinstance(data, dict) and data.get("transcript", "").strip():
            seen["n"] += 1
            if seen["n"] == 2:  # the first reply after the greeting
                cartesia.fail_next(ErrorReply("boom", "internal_error"))
        await original(ws, conn, data)

    cartesia.on_message = on_message  # type: ignore[method-assign]
    return _call(openai, cartesia, script)
