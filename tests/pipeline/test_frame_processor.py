"""FrameProcessor semantics: ordering, system frames overtaking data, interruptions, errors."""

from __future__ import annotations

import asyncio

from phonewire.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    FrameDirection,
    InputAudioRawFrame,
    InterruptionFrame,
    StartFrame,
    TextFrame,
)
from phonewire.pipeline.pipeline import Pipeline
from phonewire.processors import FrameProcessor

DOWN, UP = FrameDirection.DOWNSTREAM, FrameDirection.UPSTREAM


class Collector(FrameProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Frame] = []
        self.upstream: list[Frame] = []
        self.got = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        (self.seen if direction is DOWN else self.upstream).append(frame)
        self.got.set()


class Gate(FrameProcessor):
    """Blocks on each TextFrame until released: makes queued data observable."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, TextFrame):
            self.entered.set()
            await self.release.wait()
        await self.push_frame(frame, direction)


class Failing(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, TextFrame) and frame.text == "boom":
            raise RuntimeError("boom")
        await self.push_frame(frame, direction)


def text(t: str) -> TextFrame:
    return TextFrame(text=t)


def test_data_frames_arrive_in_order_and_system_frames_overtake_queued_data() -> None:
    async def main() -> list[str]:
        gate, sink = Gate(), Collector()
        gate.link(sink)
        await gate.queue_frame(StartFrame())
        await gate.queue_frame(text("a"))
        await gate.entered.wait()
        await gate.queue_frame(text("b"))
        await gate.queue_frame(InputAudioRawFrame(audio=b"\0\0", sample_rate=8000))
        gate.release.set()
        async with asyncio.timeout(2):
            while len(sink.seen) < 4:
                sink.got.clear()
                await sink.got.wait()
        await gate.cleanup()
        await sink.cleanup()
        return [type(f).__name__ if not isinstance(f, TextFrame) else f.text for f in sink.seen]

    assert asyncio.run(main()) == ["StartFrame", "InputAudioRawFrame", "a", "b"]


def test_an_interruption_drops_queued_data_but_keeps_the_end_frame() -> None:
    async def main() -> list[str]:
        gate, sink = Gate(), Collector()
        gate.link(sink)
        await gate.queue_frame(StartFrame())
        await gate.queue_frame(text("playing"))
        await gate.entered.wait()
        for t in ("queued-1", "queued-2"):
            await gate.queue_frame(text(t))
        await gate.queue_frame(EndFrame())
        await gate.queue_frame(InterruptionFrame())
        gate.release.set()
        async with asyncio.timeout(2):
            while not any(isinstance(f, EndFrame) for f in sink.seen):
                sink.got.clear()
                await sink.got.wait()
        for p in (gate, sink):
            await p.cleanup()
        return [type(f).__name__ if not isinstance(f, TextFrame) else f.text for f in sink.seen]

    assert asyncio.run(main()) == ["StartFrame", "InterruptionFrame", "EndFrame"]


def test_an_exception_in_a_processor_becomes_an_error_frame_and_processing_continues() -> None:
    async def main() -> tuple[list[str], list[Frame]]:
        head, failing, sink = Collector(), Failing(), Collector()
        pipeline = Pipeline([failing, sink])
        head.link(pipeline)
        await pipeline.queue_frame(StartFrame())
        await pipeline.queue_frame(text("boom"))
        await pipeline.queue_frame(text("after"))
        async with asyncio.timeout(2):
            while not sink.seen or not head.upstream:
                sink.got.clear()
                head.got.clear()
                await asyncio.wait(
                    [asyncio.ensure_future(sink.got.wait()), asyncio.ensure_future(head.got.wait())],
                    return_when=asyncio.FIRST_COMPLETED,
                )
        for p in (failing, sink):
            await p.cleanup()
        return [f.text for f in sink.seen if isinstance(f, TextFrame)], head.upstream

    seen, upstream = asyncio.run(main())
    assert seen == ["after"]
    assert isinstance(upstream[0], ErrorFrame) and "boom" in upstream[0].error


def test_a_full_queue_makes_the_pusher_wait_instead_of_growing() -> None:
    async def main() -> tuple[int, bool]:
        gate = Gate()
        gate._max_queue = 3
        await gate.queue_frame(StartFrame())
        await gate.queue_frame(text("blocker"))
        await gate.entered.wait()
        for i in range(3):
            await gate.queue_frame(text(str(i)))
        pusher = asyncio.ensure_future(gate.queue_frame(text("overflow")))
        await asyncio.sleep(0.05)
        blocked = not pusher.done()
        gate.release.set()
        await asyncio.wait_for(pusher, 2)
        await gate.cleanup()
        return gate.queue_high_water, blocked

    high_water, blocked = asyncio.run(main())
    assert blocked and high_water == 3
