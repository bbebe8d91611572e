"""A phone agent on OpenAI STT + LLM (FakeOpenAIServer) and a streaming WebSocket TTS (the
Cartesia or ElevenLabs fake), served by ``create_app`` (the agent_app.py pattern)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from phonewire.frames import TTSSpeakFrame
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.processors.aggregators import LLMContext, LLMContextAggregatorPair
from phonewire.server import ServerConfig, create_app
from phonewire.services.openai import OpenAILLMService, OpenAISTTService
from phonewire.testing.fakes import FakeOpenAIServer

SYSTEM = {"role": "system", "content": "You are a helpful phone agent."}
GREETING = "Hello, how can I help?"


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
        pair = LLMContextAggregatorPair(context)
        task = PipelineTask(
            Pipeline([transport.input(), stt, pair.user(), llm, tts, transport.output(), pair.assistant()])
        )
        await task.queue_frame(TTSSpeakFrame(text=GREETING))
        await PipelineRunner(handle_sigint=False, handle_sigterm=False).run(task)

    return create_app(bot, ServerConfig(vad="silero", stream_scheme="ws", freeze_gc=False))
