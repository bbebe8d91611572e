"""Agent calls end to end on a streaming WebSocket TTS (the Cartesia fake): real server,
simulated Twilio caller (μ-law 8 kHz), FakeOpenAIServer for STT and the LLM."""

from __future__ import annotations

from typing import Any

import pytest
from agent_app import GREETING
from streaming_tts_app import (
    BARGE_IN_REPLIES,
    BARGE_IN_SCRIPT,
    BARGE_IN_TRANSCRIPTS,
    HELLO,
    ONE_QUESTION_SCRIPT,
    StreamingCall,
    assert_kept_the_heard_words,
    run_call,
    transcoding_probes,
)

from phonewire.services.cartesia import CartesiaTTSService
from phonewire.testing import HangUp, Say, WaitForBotReply
from phonewire.testing.fakes import FakeOpenAIServer
from phonewire.testing.fakes.cartesia_server import FakeCartesiaServer
from phonewire.testing.fakes.ws_fake import ErrorReply

pytestmark = pytest.mark.slow


def _call(openai: FakeOpenAIServer, cartesia: FakeCartesiaServer, script: list[Any]) -> tuple[Any, list[StreamingCall]]:
    return run_call(
        openai, lambda: CartesiaTTSService(api_key="test-key", base_url=cartesia.base_url, voice_id="voice-1"), script
    )


def test_a_call_is_answered_with_mulaw_passed_through_untouched() -> None:
    with FakeOpenAIServer(transcripts=["Where is my order?"], chat_replies=["It shipped today."]) as openai:
        with FakeCartesiaServer() as cartesia:
            with transcoding_probes() as (encode, converted):
                report, [call] = _call(openai, cartesia, ONE_QUESTION_SCRIPT)
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
    with FakeOpenAIServer(transcripts=BARGE_IN_TRANSCRIPTS, chat_replies=BARGE_IN_REPLIES) as openai:
        with FakeCartesiaServer(realtime=1.5) as cartesia:  # still generating at the barge-in
            report, [call] = _call(openai, cartesia, BARGE_IN_SCRIPT)
            second = openai.chat_requests[1].json["messages"]
            reply_ctx = next(c for c in cartesia.contexts.values() if "warehouse" in "".join(c.transcripts))

    # exact to the word, from the service's own marks
    assert_kept_the_heard_words(report, second, reply_ctx.words)
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
