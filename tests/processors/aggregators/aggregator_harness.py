"""Small scripted processors for the aggregator tests: a recorder, a fake LLM+TTS+output."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Any

from phonewire.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    FrameDirection,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    StartFrame,
    SystemFrame,
    TTSTextFrame,
)
from phonewire.pipeline import Pipeline, PipelineTask
from phonewire.processors import FrameProcessor

DOWN, UP = FrameDirection.DOWNSTREAM, FrameDirection.UPSTREAM


class Recorder(FrameProcessor):
    """Records every frame with its direction; ``wait_for`` awaits the n-th of a type."""

    def __init__(self, *, queueless: bool = False) -> None:
        super().__init__()
        self.frames: list[tuple[Frame, FrameDirection]] = []
        self._changed = asyncio.Event()
        self._queueless = queueless

    async def queue_frame(self, frame: Frame, direction: FrameDirection = DOWN) -> None:
        if self._queueless:  # pass straight through: keeps the test's frame order exact
            await self.process_frame(frame, direction)
        else:
            await super().queue_frame(frame, direction)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self.frames.append((frame, direction))
        self._changed.set()
        await self.push_frame(frame, direction)

    def of(self, kind: type[Frame], direction: FrameDirection | None = None) -> list[Any]:
        return [f for f, d in self.frames if isinstance(f, kind) and (direction is None or d is direction)]

    async def wait_for(
        self, kind: type[Frame], count: int = 1, direction: FrameDirection | None = None, timeout: float = 3.0
    ) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(self.of(kind, direction)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.of(kind, direction)


    async def wait_count(self, count: int, timeout: float = 3.0) -> None:
        """Until ``count`` frames other than the StartFrame went through."""
        async with asyncio.timeout(timeout):
            while sum(not isinstance(f, StartFrame) for f, _ in self.frames) < count:
                self._changed.clear()
                await self._changed.wait()


async def queue_in_order(task: PipelineTask, frames: list[Frame], tail: Recorder) -> None:
    """Queue ``frames`` so they arrive as a live pipeline delivers them: a system frame only
    after the data before it went through (in a call, seconds of audio separate them)."""
    for n, frame in enumerate(frames):
        if isinstance(frame, SystemFrame):
            await tail.wait_count(n)
        await task.queue_frame(frame)
    await tail.wait_count(len(frames))


def spoken_reply(*utterances: list[str]) -> list[Frame]:
    """What the TTS and output produce for a reply heard to the end: per utterance its text
    frames, then the bot's start and stop."""
    frames: list[Frame] = [LLMFullResponseStartFrame()]
    for words in utterances:
        frames.append(BotStartedSpeakingFrame())
        frames.extend(TTSTextFrame(text=w) for w in words)
        frames.append(BotStoppedSpeakingFrame())
    frames.append(LLMFullResponseEndFrame())
    return frames


class FakeBot(FrameProcessor):
    """Stands for LLM + TTS + transport output: on each LLMContextFrame (either direction) it
    snapshots the messages and plays the next scripted reply downstream."""

    def __init__(self, replies: list[list[Frame]]) -> None:
        super().__init__()
        self.replies = list(replies)
        self.requests: list[list[dict[str, Any]]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            self.requests.append(copy.deepcopy(frame.context.messages))
            for out in self.replies.pop(0) if self.replies else []:
                await self.push_frame(out)
            return
        await self.push_frame(frame, direction)


Driver = Callable[[PipelineTask], Awaitable[None]]


def run(processors: list[FrameProcessor], driver: Driver, timeout: float = 10.0) -> None:
    """Run a real pipeline; ``driver`` feeds it, then it ends gracefully."""

    async def main() -> None:
        task = PipelineTask(Pipeline(processors))
        runner = asyncio.get_running_loop().create_task(task.run())
        try:
            await driver(task)
            await task.end()
            await asyncio.wait_for(asyncio.shield(runner), timeout)
        finally:
            if not runner.done():
                runner.cancel()
                await asyncio.gather(runner, return_exceptions=True)

    asyncio.run(asyncio.wait_for(main(), timeout + 5))
