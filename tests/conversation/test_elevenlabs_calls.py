"""Agent calls end to end on ElevenLabsTTSService (the multi-context fake): real server,
simulated Twilio caller (μ-law 8 kHz), FakeOpenAIServer for STT and the LLM."""

from __future__ import annotations

from typing import Any

import pytest
import streaming_tts_app as calls
from agent_app import GREETING

from phonewire.services.elevenlabs import ElevenLabsTTSService
from phonewire.testing.fakes import FakeElevenLabsServer, FakeOpenAIServer
from phonewire.testing.fakes.elevenlabs_validate import validate_client_message

pytestmark = pytest.mark.slow


def _call(eleven: FakeElevenLabsServer, openai: FakeOpenAIServer, script: list[Any]) -> Any:
    """The report and the calls of one simulated call on ElevenLabs (the shared scaffolding)."""

    def make_tts() -> ElevenLabsTTSService:
        return ElevenLabsTTSService(api_key="test-key", base_url=eleven.base_url, voice_id="voice-1")

    return calls.run_call(openai, make_tts, script)


def test_a_call_is_answered_with_ulaw_8000_passed_through_untouched() -> None:
    with FakeOpenAIServer(transcripts=["Where is my order?"], chat_replies=["It shipped today."]) as openai:
        with FakeElevenLabsServer() as eleven:
            with calls.transcoding_probes() as (encode, converted):
                report, [call] = _call(eleven, openai, calls.ONE_QUESTION_SCRIPT)
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
    with FakeOpenAIServer(transcripts=calls.BARGE_IN_TRANSCRIPTS, chat_replies=calls.BARGE_IN_REPLIES) as openai:
        with FakeElevenLabsServer(realtime=1.5) as eleven:  # still generating at the barge-in
            report, [call] = _call(eleven, openai, calls.BARGE_IN_SCRIPT)
            second = openai.chat_requests[1].json["messages"]
            reply_ctx = next(c for c in eleven.contexts.values() if "warehouse" in "".join(c.inputs))
            closes = [m.data for m in eleven.received if m.data.get("close_context")]
            peak = eleven.peak_active

    # exact to the word, from the service's own alignment
    calls.assert_kept_the_heard_words(report, second, reply_ctx.words)
    # the interrupted context was closed at the service (at its end, flushed, or at the barge-in)
    assert reply_ctx.context_id in call.tts.cancelled_contexts
    assert {"context_id": reply_ctx.context_id, "close_context": True} in closes
    assert reply_ctx.final and peak <= 5
