"""Pipeline: processors linked in a row, itself usable as one processor."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from phonewire.frames import Frame, FrameDirection
from phonewire.processors.frame_processor import FrameProcessor, FrameProcessorSetup

__all__ = ["Pipeline"]

EdgeHandler = Callable[[Frame, FrameDirection], Awaitable[None]]


class _Edge(FrameProcessor):
    """A pass-through end of a chain: hands frames straight to a callback, no queue."""

    def __init__(self, handler: EdgeHandler, *, name: str) -> None:
        super().__init__(name=name)
        self._handler = handler

    async def queue_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        await self._handler(frame, direction)


class Pipeline(FrameProcessor):
    """Links ``processors`` in order. Frames leaving the last one downstream (or the first
    one upstream) leave the pipeline, so pipelines nest."""

    def __init__(self, processors: Sequence[FrameProcessor], *, name: str | None = None) -> None:
        super().__init__(name=name)
        self._processors = list(processors)
        self._source = _Edge(self._leave_upstream, name=f"{self.name}::source")
        self._sink = _Edge(self._leave_downstream, name=f"{self.name}::sink")
        chain = [self._source, *self._processors, self._sink]
        for a, b in zip(chain, chain[1:], strict=False):
            a.link(b)

    def processors(self) -> list[FrameProcessor]:
        out: list[FrameProcessor] = []
        for p in self._processors:
            out.extend(p.processors())
        return out

    async def queue_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        if direction is FrameDirection.DOWNSTREAM:
            await (self._processors[0] if self._processors else self._sink).queue_frame(frame, direction)
        else:
            await (self._processors[-1] if self._processors else self._source).queue_frame(frame, direction)

    async def _leave_upstream(self, frame: Frame, direction: FrameDirection) -> None:
        await self.push_frame(frame, FrameDirection.UPSTREAM)

    async def _leave_downstream(self, frame: Frame, direction: FrameDirection) -> None:
        await self.push_frame(frame, FrameDirection.DOWNSTREAM)

    async def setup(self, setup: FrameProcessorSetup) -> None:
        for p in self._processors:
            await p.setup(setup)

    async def cleanup(self) -> None:
        for p in self._processors:
            await p.cleanup()
