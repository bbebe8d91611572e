"""A running pipeline for speech-service tests: source -> processors -> collector.

Frames go in through ``Harness.push`` (the source's push, so system frames are processed
inline on the test's task, as the transport's input would); ``Collector.wait_for`` waits on
frame arrival with a timeout, never a sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from phonewire.frames import Frame, FrameDirection, StartFrame
from phonewire.pipeline import Pipeline, PipelineParams, PipelineTask
from phonewire.processors import FrameProcessor


class Collector(FrameProcessor):
    """Records what reaches it (either direction) and passes it on."""

    def __init__(self, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
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

    def of(self, *types: type) -> list[Frame]:
        return [f for f in self.frames if isinstance(f, types)]

    async def wait_for(self, predicate: Callable[[list[Frame]], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.frames):
                self._changed.clear()
                await self._changed.wait()

    async def wait_for_type(self, frame_type: type, count: int = 1, timeout: float = 5.0) -> list[Frame]:
        await self.wait_for(lambda fs: sum(isinstance(f, frame_type) for f in fs) >= count, timeout)
        return self.of(frame_type)


@dataclass
class Harness:
    task: PipelineTask
    upstream: Collector
    downstream: Collector

    async def push(self, *frames: Frame) -> None:
        for frame in frames:
            await self.upstream.push_frame(frame, FrameDirection.DOWNSTREAM)


@asynccontextmanager
async def running(*processors: FrameProcessor, params: PipelineParams | None = None) -> AsyncIterator[Harness]:
    head, tail = Collector(FrameDirection.UPSTREAM), Collector()
    task = PipelineTask(Pipeline([head, *processors, tail]), params)
    runner = asyncio.get_running_loop().create_task(task.run())
    try:
        await tail.wait_for_type(StartFrame)
        yield Harness(task, head, tail)
    finally:
        await task.cancel()
        await asyncio.wait_for(runner, 10)
