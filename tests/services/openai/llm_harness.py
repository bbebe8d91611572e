"""A pipeline around an LLM service for tests: recorders on both sides, waits with timeouts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from phonewire import PipelineParams
from phonewire.frames import Frame, FrameDirection, LLMContextFrame, StartFrame
from phonewire.pipeline import Pipeline, PipelineTask
from phonewire.processors import FrameProcessor

WAIT = 5.0


class Recorder(FrameProcessor):
    """Records every frame going through it in ``direction`` and forwards everything."""

    def __init__(self, direction: FrameDirection) -> None:
        super().__init__()
        self.direction = direction
        self.frames: list[Frame] = []
        self._changed = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is self.direction:
            self.frames.append(frame)
            self._changed.set()
        await self.push_frame(frame, direction)

    def of(self, kind: type[Any]) -> list[Any]:
        return [f for f in self.frames if isinstance(f, kind)]

    async def wait_for(self, predicate: Callable[[list[Frame]], bool], timeout: float = WAIT) -> list[Frame]:
        async with asyncio.timeout(timeout):
            while not predicate(self.frames):
                self._changed.clear()
                await self._changed.wait()
        return self.frames

    async def wait_count(self, kind: type[Any], count: int, timeout: float = WAIT) -> list[Any]:
        await self.wait_for(lambda _: len(self.of(kind)) >= count, timeout)
        return self.of(kind)


@dataclass
class Context:
    """The LLMContext interface the service relies on (duck-typed)."""

    messages: list[dict[str, Any]] = field(default_factory=lambda: [{"role": "user", "content": "Hi there"}])
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None

    def get_messages(self) -> list[dict[str, Any]]:
        return list(self.messages)


@dataclass
class Harness:
    task: PipelineTask
    up: Recorder
    down: Recorder

    async def run_context(self, context: Any = None) -> Any:
        context = context or Context()
        await self.task.queue_frame(LLMContextFrame(context=context))
        return context


def tool(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "description": f"{name} tool", "parameters": {"type": "object", "properties": {}}},
    }


@contextlib.asynccontextmanager
async def pipeline(llm: FrameProcessor, *, metrics: bool = False) -> AsyncIterator[Harness]:
    up, down = Recorder(FrameDirection.UPSTREAM), Recorder(FrameDirection.DOWNSTREAM)
    params = PipelineParams(enable_metrics=metrics, enable_usage_metrics=metrics)
    task = PipelineTask(Pipeline([up, llm, down]), params)
    runner = asyncio.create_task(task.run())
    try:
        await down.wait_count(StartFrame, 1)
        yield Harness(task, up, down)
    finally:
        await task.cancel()
        await asyncio.wait_for(runner, WAIT)
