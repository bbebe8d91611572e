"""One Silero inference for many calls: the cross-call VAD batcher.

With hundreds of calls per process, running the VAD model once per 32 ms window per call is
the largest cost of a call (docs/vad.md: ~180 µs a window under load). One ONNX run over a
batch of windows from many calls costs ~70 µs per window. The batcher collects the calls
whose buffers hold a full window, waits ``BATCH_DELAY_SECS`` for more to join, runs one
inference per batch, and hands each call its transitions.

It owns a single task per event loop, started on demand and ended as soon as no call has a
pending window, so nothing lingers after the last call. Decisions arrive at most
``BATCH_DELAY_SECS`` later than with inline inference; a call alone in a batch costs the same
as inline.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from phonewire.audio.vad.silero import SileroVADAnalyzer, batch_confidences

__all__ = ["BATCH_DELAY_SECS", "VADBatcher"]

logger = logging.getLogger("phonewire.vad")

#: How long a batch waits for other calls to join: short next to the VAD's own 200 ms
#: start_secs, long enough to gather tens of calls at 50 packets/s each.
BATCH_DELAY_SECS = 0.005

Deliver = Callable[[list[Any]], Awaitable[None]]
_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, VADBatcher] = weakref.WeakKeyDictionary()


class VADBatcher:
    def __init__(self) -> None:
        self._waiting: dict[int, tuple[SileroVADAnalyzer, Deliver]] = {}
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.windows = 0

    @classmethod
    def for_loop(cls) -> VADBatcher:
        loop = asyncio.get_running_loop()
        batcher = _batchers.get(loop)
        if batcher is None:
            batcher = _batchers[loop] = cls()
        return batcher

    def submit(self, analyzer: SileroVADAnalyzer, pcm: bytes, deliver: Deliver) -> None:
        """Buffer ``pcm``; ``deliver(transitions)`` is awaited once its windows are decided."""
        analyzer.feed(pcm)
        if analyzer.pending_windows() == 0:
            return
        self._waiting[id(analyzer)] = (analyzer, deliver)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="vad-batcher")

    def forget(self, analyzer: SileroVADAnalyzer) -> None:
        """The call ended: drop its pending work."""
        self._waiting.pop(id(analyzer), None)

    async def _run(self) -> None:
        while self._waiting:
            await asyncio.sleep(BATCH_DELAY_SECS)
            work, self._waiting = self._waiting, {}
            results = self._decide(list(work.values()))
            for (_, deliver), transitions in zip(work.values(), results, strict=True):
                # Delivered even when empty: the call may be timing a barge-in
                # (interruption_min_speech_secs) that needs to see speech go on.
                await _deliver(deliver, transitions)

    def _decide(self, work: list[tuple[SileroVADAnalyzer, Deliver]]) -> list[list[Any]]:
        """Run batches until every analyzer's buffered windows are decided."""
        results: list[list[Any]] = [[] for _ in work]
        pending = [i for i, (a, _) in enumerate(work) if a.pending_windows()]
        while pending:
            analyzers = [work[i][0] for i in pending]
            windows = [a.take_window() for a in analyzers]
            confidences = batch_confidences(analyzers, windows)
            self.batches += 1
            self.windows += len(windows)
            for i, a, c, w in zip(pending, analyzers, confidences, windows, strict=True):
                transition = a.apply_confidence(c, w)
                if transition is not None:
                    results[i].append(transition)
            pending = [i for i in pending if work[i][0].pending_windows()]
        return results


async def _deliver(deliver: Deliver, transitions: list[Any]) -> None:
    try:
        await deliver(transitions)
    except asyncio.CancelledError:
        raise
    except Exception:  # one call's failure must not stop the others' VAD
        logger.exception("! delivering VAD transitions failed")
