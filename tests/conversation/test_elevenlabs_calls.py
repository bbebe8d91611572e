"""Agent calls end to end on ElevenLabsTTSService (the multi-context fake): real server,
simulated Twilio caller (μ-law 8 kHz), FakeOpenAIServer for STT and the LLM."""

from __future__ import annotations

import asyncio
from typing import Any
from unittest import mock

import pytest
from streaming_tts_app import GREETING, StreamingCall, streaming_tts_app

import phonewire.audio.g711 as g711
from phonewire.audio.resample import RateConverter
from phonewire.services.elevenlabs import ElevenLabsTTSService
from phonewire.testing import BargeIn, HangUp, Say, WaitForBotReply, simulate_call
from phonewire.testing.fakes import FakeElevenLabsServer, FakeOpenAIServer
from phonewire.testing.fakes.elevenlabs_validate import validate_client_message
from phonewire.testing.script import builtin_recording
from support.server_harness import serve

pytestmark = pytest.mark.slow

HELLO = builtin_recording("hello")
THANKS = builtin_recording("thanks")
LONG_REPLY = (
    "Your order left our warehouse on Monday, it travelled through three depots, "
    "it is now with the local courier, and it should reach you tomorrow before noon."
)


def _call(openai: FakeOpenAIServer, eleven: FakeElevenLabsServer, script: list[Any]) -> tuple[Any, list[StreamingCall]]:
    calls: list[StreamingCall] = []

    def make_tts() -> ElevenLabsTTSService:
        return ElevenLabsTTSService(api_key="test-key", base_url=eleven.base_url, voice_id="voice-1")

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


def test_a_call_is_answered_with_ulaw_8000_passed_through_untouched() -> None:
    encode = _Counter(g711.pcm_to_ulaw)
    converted: list[int] = []

    class CountingConverter(RateConverter):
        def convert(self, pcm: bytes, in_rate: int) -> bytes:
            converted.append(len(pcm))
            return super().convert(pcm, in_rate)

    with FakeOpenAIServer(transcripts=["Where is my order?"], chat_replies=["It shipped today."]) as openai:
        with FakeElevenLabsServer() as eleven:
            with (
                mock.patch("phonewire.serializers.twilio.pcm_to_ulaw", encode),
                mock.patch("phonewire.transports.output.RateConverter", CountingConverter),
            ):
                report, [call] = _call(
                    openai, eleven, [WaitForBotReply(), Say.from_wav(HELLO), WaitForBotReply(), HangUp()]
                )
            requests = [m.data for m in eleven.received]
            queries = [c.query for c in eleven.conns.values()]
            audio_bytes = sum(c.audio_bytes for c in eleven.contexts.values())

    assert report.turns[0].response_latency_ms is not None
    assert report.audio_received_s > 1.0
    # zero transcoding on the way out: no G.711 encode, no resampler for the bot's audio
    assert encode.calls == 0
    assert converted == []
    assert queries and all(q["output_format"] == "ulaw_8000" for q in queries)
    # the caller received (at least) what ElevenLabs sent, byte for byte in length: 8 bytes a ms
    assert report.audio_received_s * 8000 >= audio_bytes * 0.95
    for message in requests:
        validate_client_message(message)
    spoken = "".join(r["text"] for r in requests if isinstance(r.get("text"), str))
    assert GREETING in spoken and "It shipped today." in spoken
    assert call.tts.connections == 1 and call.tts.error_count == 0


def test_a_barge_in_keeps_exactly_the_words_whose_audio_was_played() -> None:
    with FakeOpenAIServer(
        transcripts=["Where is my order?", "Thanks."], chat_replies=[LONG_REPLY, "Glad to help."]
    ) as openai:
        with FakeElevenLabsServer(realtime=1.5) as eleven:  # still generating at the barge-in
            script = [
                WaitForBotReply(),
                Say.from_wav(HELLO),
                BargeIn.from_wav(2.5, THANKS),
                WaitForBotReply(),
                HangUp(),
            ]
            report, [call] = _call(openai, eleven, script)
            second = openai.chat_requests[1].json["messages"]
            reply_ctx = next(c for c in eleven.contexts.values() if "warehouse" in "".join(c.inputs))
            closes = [m.data for m in eleven.received if m.data.get("close_context")]
            peak = eleven.peak_active

    barge = report.barge_ins[0]
    assert barge.bot_silent_s is not None
    reply_turn = report.turns[0]
    assert reply_turn.first_bot_audio_s is not None
    heard_ms = (barge.bot_silent_s - reply_turn.first_bot_audio_s) * 1000
    started = [w.word for w in reply_ctx.words if w.start_ms < heard_ms]
    kept = second[3]["content"].removesuffix(" —").split()
    # exact to the word, from the service's own alignment: at most the word at the cut differs
    assert kept == started or kept == started[:-1] or kept == [w.word for w in reply_ctx.words][: len(started) + 1], (
        kept,
        started,
    )
    assert 2 <= len(kept) < len(reply_ctx.words)
    # the interrupted context was closed at the service (at its end, flushed, or at the barge-in)
    assert reply_ctx.context_id in call.tts.cancelled_contexts
    assert {"context_id": reply_ctx.context_id, "close_context": True} in closes
    assert reply_ctx.final and peak <= 5
