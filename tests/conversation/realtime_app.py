"""A speech-to-speech phone agent on OpenAIRealtimeLLMService, served by ``create_app`` and
pointed at a FakeRealtimeServer; the tests call it through a real server and the simulator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from phonewire.frames import LLMRunFrame
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.server import ServerConfig, create_app
from phonewire.server.prewarm import prewarmed
from phonewire.services.openai.realtime import OpenAIRealtimeLLMService
from phonewire.testing.fakes import FakeRealtimeServer

INSTRUCTIONS = "You are a helpful phone agent."
ORDER_TOOL = {
    "type": "function",
    "name": "get_order_status",
    "description": "Look up an order.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
}


@dataclass
class RealtimeCall:
    llm: OpenAIRealtimeLLMService
    transport: Any
    wire_mode: bool
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


def realtime_app(fake: FakeRealtimeServer, calls: list[RealtimeCall], **config: Any) -> Any:
    async def bot(transport: Any, info: Any) -> None:
        wire = transport.input().use_wire_audio()
        llm = OpenAIRealtimeLLMService(
            api_key="test-key",
            base_url=fake.base_url,
            instructions=INSTRUCTIONS,
            tools=[ORDER_TOOL],
            audio_format="pcmu" if info.media_format.encoding == "mulaw" else "pcm",
            connection=prewarmed(),
        )
        call = RealtimeCall(llm, transport, wire)
        calls.append(call)

        async def get_order_status(params: Any) -> None:
            call.tool_calls.append(dict(params.arguments))
            await params.result_callback({"order_id": params.arguments.get("order_id"), "status": "shipped"})

        llm.register_function("get_order_status", get_order_status)
        task = PipelineTask(Pipeline([transport.input(), llm, transport.output()]))
        await task.queue_frame(LLMRunFrame())  # the greeting
        await PipelineRunner(handle_sigint=False, handle_sigterm=False).run(task)

    settings: dict[str, Any] = {"stream_scheme": "ws", "freeze_gc": False, **config}
    return create_app(bot, ServerConfig(**settings))
