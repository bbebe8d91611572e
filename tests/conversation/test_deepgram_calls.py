"""A phone call on Deepgram end to end: real server, simulated Twilio caller, fake Deepgram + OpenAI."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from deepgram_agent_app import DeepgramCall, deepgram_agent_app

import phonewire.audio.resample as resample
from phonewire.audio.g711 import pcm_to_ulaw
from phonewire.audio.wav import read_wav
from phonewire.testing import HangUp, Say, WaitForBotReply, simulate_call
from phonewire.testing.fakes import FakeDeepgramServer, FakeOpenAIServer
from phonewire.testing.fakes.deepgram_validate import validate_server_message
from phonewire.testing.script import builtin_recording
from support.server_harness import serve

pytestmark = pytest.mark.slow

HELLO = builtin_recording("hello")
HELLO_TEXT = "I would like to know my order status."


def test_a_call_on_deepgram_is_transcribed_and_answered_with_mulaw_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    resamplers: list[tuple[int, int]] = []
    original = resample.StreamResampler.__init__

    def recording_init(self: Any, in_rate: int, out_rate: int, *args: Any, **kwargs: Any) -> None:
        if in_rate != out_rate:
            resamplers.append((in_rate, out_rate))
        original(self, in_rate, out_rate, *args, **kwargs)

    monkeypatch.setattr(resample.StreamResampler, "__init__", recording_init)
    calls: list[DeepgramCall] = []
    with (
        FakeOpenAIServer(chat_replies=["Sure, what is the order number?"]) as openai,
        FakeDeepgramServer(transcripts=[HELLO_TEXT]) as deepgram,
    ):

        async def main() -> Any:
            async with serve(deepgram_agent_app(openai, deepgram, calls)) as hostport:
                script = [WaitForBotReply(), Say.from_wav(HELLO), WaitForBotReply(), HangUp()]
                return await simulate_call(f"ws://{hostport}/ws", script=script, max_duration_s=40)

        report = asyncio.run(main())
        chat = openai.chat_requests[0].json["messages"]
        rec = deepgram.connections[0]
    [call] = calls
    assert report.errors == [], report.render_text()
    assert chat[-1] == {"role": "user", "content": HELLO_TEXT}  # Deepgram's words reached the LLM
    assert report.turns[0].response_latency_ms is not None  # and the caller heard the answer
    assert len(deepgram.connections) == 1 and rec.is_mulaw
    hello_ulaw = pcm_to_ulaw(read_wav(HELLO)[0])
    assert hello_ulaw[: len(hello_ulaw) // 160 * 160] in bytes(rec.audio)  # the line's bytes, exactly
    assert not [r for r in resamplers if r[0] == 8000]  # nothing resampled the caller's 8 kHz audio
    if call.wire_mode:
        assert call.stt.transcoded_packets == 0  # not even re-encoded
    assert rec.finalizes >= 1 and any(m.get("from_finalize") for m in rec.finals())
    for message in rec.sent:
        validate_server_message(message)
    stages = call.transport.stats.turns[0].stages
    assert stages["transcript"] <= stages["turn_end"] <= stages["llm_first_token"]
