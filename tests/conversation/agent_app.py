"""An OpenAI-compatible phone agent served by ``create_app``, pointed at a FakeOpenAIServer.

The tests call it through a real uvicorn server with the call simulator, so everything
between the caller's audio and the fake services is the shipped code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from phonewire.frames import TTSSpeakFrame
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.processors.aggregators import LLMContext, LLMContextAggregatorPair
from phonewire.server import ServerConfig, create_app
from phonewire.services.openai import OpenAILLMService, OpenAISTTService, OpenAITTSService
from phonewire.testing.fakes import FakeOpenAIServer

SYSTEM = {"role": "system", "content": "You are a helpful phone agent."}
GREETING = "Hello, how can I help?"
ORDER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_order_status",
        "description": "Look up an order.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
    },
}


@dataclass
class AgentCall:
    """What the bot side of one call exposes to the test."""

    context: LLMContext
    llm: OpenAILLMService
    tts: OpenAITTSService
    stt: OpenAISTTService
    transport: Any
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


def agent_app(
    fake: FakeOpenAIServer,
    calls: list[AgentCall],
    *,
    tool: Callable[[Any], Awaitable[None]] | None = None,
    llm_kwargs: dict[str, Any] | None = None,
    tts_kwargs: dict[str, Any] | None = None,
) -> Any:
    async def bot(transport: Any, info: Any) -> None:
        stt = OpenAISTTService(api_key="test-key", base_url=fake.base_url, model="whisper-1")
        llm = OpenAILLMService(api_key="test-key", base_url=fake.base_url, model="gpt-4o-mini", **(llm_kwargs or {}))
        tts = OpenAITTSService(api_key="test-key", base_url=fake.base_url, model="tts-1", **(tts_kwargs or {}))
        context = LLMContext([dict(SYSTEM)], tools=[ORDER_TOOL])
        call = AgentCall(context, llm, tts, stt, transport)
        calls.append(call)

        async def get_order_status(params: Any) -> None:
            call.tool_calls.append(dict(params.arguments))
            if tool is not None:
                await tool(params)
            else:
                await params.result_callback({"order_id": params.arguments.get("order_id"), "status": "shipped"})

        llm.register_function("get_order_status", get_order_status)
        await run_cascade(transport, context, stt, llm, tts)

    return agent_server(bot)


async def run_cascade(transport: Any, context: LLMContext, stt: Any, llm: Any, tts: Any) -> None:
    """The cascaded agent's pipeline (STT, user aggregator, LLM, TTS, output, assistant
    aggregator) on ``context``, greeting the caller first; returns when the call ends."""
    pair = LLMContextAggregatorPair(context)
    task = PipelineTask(Pipeline([transport.input(), stt, pair.user(), llm, tts, transport.output(), pair.assistant()]))
    await task.queue_frame(TTSSpeakFrame(text=GREETING))
    await PipelineRunner(handle_sigint=False, handle_sigterm=False).run(task)


def agent_server(bot: Callable[[Any, Any], Awaitable[None]]) -> Any:
    """``create_app`` serving ``bot`` the way every agent test serves it (Silero VAD, ws://)."""
    return create_app(bot, ServerConfig(vad="silero", stream_scheme="ws", freeze_gc=False))
