"""A phone agent on OpenAI STT + LLM (FakeOpenAIServer) and a streaming WebSocket TTS (the
Cartesia or ElevenLabs fake), served by ``create_app`` (the agent_app.py pattern), and the call
scaffolding its tests share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

from agent_app import SYSTEM, agent_server, run_cascade

import phonewire.audio.g711 as g711
from phonewire.audio.resample import RateConverter
from phonewire.processors.aggregators import LLMContext
from phonewire.services.openai import OpenAILLMService, OpenAISTTService
from phonewire.testing import BargeIn, HangUp, Say, WaitForBotReply, simulate_call
from phonewire.testing.fakes import FakeOpenAIServer
from phonewire.testing.script import builtin_recording
from support.server_harness import serve


@dataclass
class StreamingCall:
    context: LLMContext
    tts: Any
    transport: Any


def streaming_tts_app(fake: FakeOpenAIServer, make_tts: Callable[[], Any], calls: list[StreamingCall]) -> Any:
    async def bot(transport: Any, info: Any) -> None:
        stt = OpenAISTTService(api_key="test-key", base_url=fake.base_url, model="whisper-1")
        llm = OpenAILLMService(api_key="test-key", base_url=fake.base_url, model="gpt-4o-mini")
        tts = make_tts()
        context = LLMContext([dict(SYSTEM)])
        calls.append(StreamingCall(context, tts, transport))
        await run_cascade(transport, context, stt, llm, tts)

    return agent_server(bot)


# --- what the streaming TTS call tests share (test_streaming_tts_calls.py, test_elevenlabs_calls.py)

HELLO = builtin_recording("hello")
THANKS = builtin_recording("thanks")
LONG_REPLY = (
    "Your order left our warehouse on Monday, it travelled through three depots, "
    "it is now with the local courier, and it should reach you tomorrow before noon."
)
#: The caller asks, the reply is still being generated when the caller barges in, then thanks.
BARGE_IN_SCRIPT: list[Any] = [
    WaitForBotReply(),
    Say.from_wav(HELLO),
    BargeIn.from_wav(2.5, THANKS),
    WaitForBotReply(),
    HangUp(),
]
BARGE_IN_TRANSCRIPTS = ["Where is my order?", "Thanks."]
BARGE_IN_REPLIES = [LONG_REPLY, "Glad to help."]
ONE_QUESTION_SCRIPT: list[Any] = [WaitForBotReply(), Say.from_wav(HELLO), WaitForBotReply(), HangUp()]


def run_call(
    openai: FakeOpenAIServer, make_tts: Callable[[], Any], script: list[Any]
) -> tuple[Any, list[StreamingCall]]:
    """One simulated Twilio call (μ-law 8 kHz) through a real server; the report has no errors."""
    calls: list[StreamingCall] = []

    async def main() -> Any:
        async with serve(streaming_tts_app(openai, make_tts, calls)) as hostport:
            return await simulate_call(f"ws://{hostport}/ws", script=script, max_duration_s=60)

    report = asyncio.run(main())
    assert report.errors == [], report.render_text()
    return report, calls


class Counter:
    """Wraps ``fn``, counting its calls."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.fn(*args, **kwargs)


@contextlib.contextmanager
def transcoding_probes() -> Iterator[tuple[Counter, list[int]]]:
    """Count the Twilio serializer's G.711 encodes and the output's resampler conversions."""
    encode = Counter(g711.pcm_to_ulaw)
    converted: list[int] = []

    class CountingConverter(RateConverter):
        def convert(self, pcm: bytes, in_rate: int) -> bytes:
            converted.append(len(pcm))
            return super().convert(pcm, in_rate)

    with (
        mock.patch("phonewire.serializers.twilio.pcm_to_ulaw", encode),
        mock.patch("phonewire.transports.output.RateConverter", CountingConverter),
    ):
        yield encode, converted


def assert_kept_the_heard_words(report: Any, second_request: list[dict[str, Any]], words: list[Any]) -> None:
    """The assistant message the LLM saw next holds the reply's words up to the barge-in, exact to
    the word from the service's own timestamps (at most the word being spoken at the cut differs)."""
    barge = report.barge_ins[0]
    assert barge.bot_silent_s is not None
    reply_turn = report.turns[0]
    assert reply_turn.first_bot_audio_s is not None
    heard_ms = (barge.bot_silent_s - reply_turn.first_bot_audio_s) * 1000
    started = [w.word for w in words if w.start_ms < heard_ms]
    kept = second_request[3]["content"].removesuffix(" —").split()
    assert kept == started or kept == started[:-1] or kept == [w.word for w in words][: len(started) + 1], (
        kept,
        started,
    )
    assert 2 <= len(kept) < len(words)
