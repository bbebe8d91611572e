"""A cascaded phone agent on Deepgram STT (FakeDeepgramServer) + OpenAI LLM/TTS (FakeOpenAIServer).

A copy of agent_app.py's shape with the STT swapped, served by ``create_app`` so the tests
drive the shipped code end to end through a real server and the call simulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent_app import SYSTEM, agent_server, run_cascade

from phonewire.processors.aggregators import LLMContext
from phonewire.services.deepgram import DeepgramSTTService
from phonewire.services.openai import OpenAILLMService, OpenAITTSService
from phonewire.testing.fakes import FakeDeepgramServer, FakeOpenAIServer


@dataclass
class DeepgramCall:
    context: LLMContext
    stt: DeepgramSTTService
    transport: Any
    wire_mode: bool


def deepgram_agent_app(openai: FakeOpenAIServer, deepgram: FakeDeepgramServer, calls: list[DeepgramCall]) -> Any:
    async def bot(transport: Any, info: Any) -> None:
        # wire mode (the input transport hands over the line's μ-law untouched) where available
        use_wire = getattr(transport.input(), "use_wire_audio", None)
        wire_mode = bool(use_wire()) if use_wire is not None else False
        stt = DeepgramSTTService(api_key=deepgram.api_key, base_url=deepgram.base_url)
        llm = OpenAILLMService(api_key="test-key", base_url=openai.base_url, model="gpt-4o-mini")
        tts = OpenAITTSService(api_key="test-key", base_url=openai.base_url, model="tts-1")
        context = LLMContext([dict(SYSTEM)])
        calls.append(DeepgramCall(context, stt, transport, wire_mode))
        await run_cascade(transport, context, stt, llm, tts)

    return agent_server(bot)
