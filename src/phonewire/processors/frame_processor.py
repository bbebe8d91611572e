"""FrameProcessor: one stage of a pipeline.

Frames travel by ``push_frame(frame, direction)``, which hands them to the neighbour's
``queue_frame``. How a frame is handled depends on its kind:

* system frames are processed at once, on the caller's task, overtaking queued data - so
  an interruption or the caller's audio never waits behind bot work;
* data and control frames go through a bounded queue and one process task, in order; a
  full queue makes the pusher wait, which is the backpressure Pipecat lacks.

An ``InterruptionFrame`` empties the queue of interruptible frames (``EndFrame`` survives)
and, when the frame being processed is interruptible, restarts the process task. A
``CancelFrame`` stops the process task for good. An exception in ``process_frame`` is
logged and reported upstream as an ``ErrorFrame``; the processor keeps working.

Cost matters: a call moves 50 audio frames a second each way, so the system-frame path is
a plain chain of awaits with no queue hop and no per-frame observer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from phonewire.events import EventEmitter
from phonewire.frames import (
    CancelFrame,
    ErrorFrame,
    Frame,
    FrameDirection,
    InterruptionFrame,
    StartFrame,
    SystemFrame,
    UninterruptibleFrame,
)
from phonewire.processors.metrics import FrameProcessorMetrics

__all__ = ["FrameProcessor", "FrameProcessorSetup"]

logger = logging.getLogger("phonewire.processors")

DOWNSTREAM = FrameDirection.DOWNSTREAM
UPSTREAM = FrameDirection.UPSTREAM

#: Default depth of a processor's data queue. Deep enough for ~20 s of 40 ms TTS chunks,
#: shallow enough that a stuck processor shows up as backpressure, not as memory growth.
DEFAULT_MAX_QUEUE = 512

_counters: dict[str, itertools.count[int]] = {}
#: System frames that change the processor's own state before they are processed.
_LIFECYCLE_FRAMES = (StartFrame, CancelFrame, InterruptionFrame)


@dataclass(slots=True)
class FrameProcessorSetup:
    """Given to every processor before the StartFrame flows."""

    clock: Any = None


class FrameProcessor(EventEmitter):
    def __init__(self, *, name: str | None = None, max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        super().__init__()
        cls = type(self).__name__
        self.name = name or f"{cls}#{next(_counters.setdefault(cls, itertools.count()))}"
        self._next: FrameProcessor | None = None
        self._prev: FrameProcessor | None = None
        self._max_queue = max_queue
        self._queue: deque[tuple[Frame, FrameDirection]] = deque()
        self._queue_changed = asyncio.Event()
        self._queue_space = asyncio.Event()
        self._queue_space.set()
        self._task: asyncio.Task[None] | None = None
        self._current: Frame | None = None
        self._cancelled = False
        self.queue_high_water = 0
        self.metrics = FrameProcessorMetrics(self.name)

    # --- wiring ------------------------------------------------------------------------

    def link(self, nxt: FrameProcessor) -> None:
        self._next = nxt
        nxt._prev = self

    @property
    def next(self) -> FrameProcessor | None:
        return self._next

    @property
    def previous(self) -> FrameProcessor | None:
        return self._prev

    def processors(self) -> list[FrameProcessor]:
        """This processor and any it contains (pipelines override this)."""
        return [self]

    async def setup(self, setup: FrameProcessorSetup) -> None:
        """Called once before the StartFrame. Override to read the clock or shared state."""

    async def cleanup(self) -> None:
        """Called once after the pipeline has finished. Stops the process task."""
        await self._stop_task()
        await self.cleanup_event_handlers()

    # --- receiving ---------------------------------------------------------------------

    async def queue_frame(self, frame: Frame, direction: FrameDirection = DOWNSTREAM) -> None:
        if self._cancelled:
            return
        if isinstance(frame, SystemFrame):
            if isinstance(frame, _LIFECYCLE_FRAMES):
                await self._handle_system_frame(frame, direction)
                return
            # The per-packet path (caller audio, VAD events): processed right here, one
            # coroutine layer instead of three, with the same error isolation as _process_safely.
            try:
                await self.process_frame(frame, direction)
            except Exception as exc:  # CancelledError is a BaseException: it propagates
                await self._report_failure(frame, exc)
            return
        while len(self._queue) >= self._max_queue:
            self._queue_space.clear()
            await self._queue_space.wait()
            if self._cancelled:
                return
        self._queue.append((frame, direction))
        self.queue_high_water = max(self.queue_high_water, len(self._queue))
        self._queue_changed.set()

    async def _handle_system_frame(self, frame: SystemFrame, direction: FrameDirection) -> None:
        if isinstance(frame, StartFrame):
            self._start_task()
        elif isinstance(frame, CancelFrame):
            self._cancelled = True
            await self._stop_task()
        elif isinstance(frame, InterruptionFrame):
            await self._interrupt()
        await self._process_safely(frame, direction)

    async def _process_safely(self, frame: Frame, direction: FrameDirection) -> None:
        try:
            await self.process_frame(frame, direction)
        except Exception as exc:  # CancelledError is a BaseException: it propagates
            await self._report_failure(frame, exc)

    async def _report_failure(self, frame: Frame, exc: Exception) -> None:
        logger.exception("! %s failed processing %s", self.name, frame, exc_info=exc)
        await self.push_error(f"{self.name}: {exc}", exception=exc)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Bookkeeping only; it never forwards the frame. Pipecat's contract.

        Override it to act on frames, and forward each frame yourself with ``push_frame``
        (or drop it, or push others). Calling ``await super().process_frame(frame, direction)``
        first, Pipecat's idiom, is welcome and cheap: it records the metrics settings a
        StartFrame carries and nothing else. (Lifecycle work - starting the process task,
        emptying the queue on an interruption, stopping on a cancel - has already happened
        by the time this runs, whether or not the subclass calls it.)
        """
        if isinstance(frame, StartFrame):
            self.metrics.configure(frame)

    # --- sending -----------------------------------------------------------------------

    async def push_frame(self, frame: Frame, direction: FrameDirection = DOWNSTREAM) -> None:
        target = self._next if direction is DOWNSTREAM else self._prev
        if target is not None:
            await target.queue_frame(frame, direction)

    async def push_error(self, error: str, *, fatal: bool = False, exception: BaseException | None = None) -> None:
        await self.push_frame(ErrorFrame(error=error, fatal=fatal, exception=exception), UPSTREAM)

    async def broadcast_frame(self, frame_type: type[Frame], **kwargs: Any) -> None:
        """Push a fresh instance of ``frame_type`` both downstream and upstream."""
        await self.push_frame(frame_type(**kwargs), DOWNSTREAM)
        await self.push_frame(frame_type(**kwargs), UPSTREAM)

    # --- metrics (Pipecat's names; no-ops unless the StartFrame enabled them) ---------

    async def start_ttfb_metrics(self) -> None:
        self.metrics.start_ttfb()

    async def stop_ttfb_metrics(self) -> None:
        await self._push_metrics(self.metrics.stop_ttfb())

    async def start_processing_metrics(self) -> None:
        self.metrics.start_processing()

    async def stop_processing_metrics(self) -> None:
        await self._push_metrics(self.metrics.stop_processing())

    async def start_llm_usage_metrics(self, tokens: Any) -> None:
        await self._push_metrics(self.metrics.llm_usage(tokens))

    async def start_tts_usage_metrics(self, text: str) -> None:
        await self._push_metrics(self.metrics.tts_usage(text))

    async def _push_metrics(self, frame: Frame | None) -> None:
        if frame is not None:
            await self.push_frame(frame)

    # --- the process task --------------------------------------------------------------

    def _start_task(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._process_loop(), name=f"{self.name}:process")

    async def _stop_task(self) -> None:
        task, self._task = self._task, None
        self._queue.clear()
        self._queue_space.set()
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _process_loop(self) -> None:
        while True:
            while not self._queue:
                self._queue_changed.clear()
                await self._queue_changed.wait()
            frame, direction = self._queue.popleft()
            self._queue_space.set()
            self._current = frame
            await self._process_safely(frame, direction)
            self._current = None

    async def _interrupt(self) -> None:
        """Drop queued interruptible frames; restart the task if it is busy with one."""
        kept = [(f, d) for f, d in self._queue if isinstance(f, UninterruptibleFrame)]
        self._queue.clear()
        self._queue.extend(kept)
        self._queue_space.set()
        current, task = self._current, self._task
        if task is None or current is None or isinstance(current, UninterruptibleFrame):
            return
        if task is asyncio.current_task():
            return  # interrupted from inside our own process_frame: it is finishing anyway
        self._task = None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self._current = None
        self._start_task()

    def __repr__(self) -> str:
        return f"<{self.name}>"
