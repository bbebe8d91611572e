"""One inference thread per loaded model, with a bounded queue.

Why a dedicated thread and not ``asyncio.to_thread``: the default executor is shared with
everything else in the process (DNS, file I/O), and a model is not faster with two threads
calling it at once - CTranslate2 and ONNX Runtime parallelise inside one call. One thread per
model makes inference strictly serial, so the queue in front of it *is* the backlog, and
bounding it turns overload into a fast, visible error (the service's failure policy speaks
an apology) instead of replies that arrive a minute late.

The count of queued jobs is released when a job really finishes, not when its awaiting
coroutine is cancelled (a barge-in): a cancelled job that is already running still occupies
the thread until it returns.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["InferenceBusy", "InferenceWorker"]

logger = logging.getLogger("phonewire.services.local")

T = TypeVar("T")


class InferenceBusy(RuntimeError):
    """The model's queue is full: the job was refused, not queued."""


class InferenceWorker:
    """Runs blocking model calls on its own thread, at most ``max_pending`` queued or running."""

    def __init__(self, name: str, *, max_pending: int = 8) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        self.name = name
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"phonewire-{name}")
        self._lock = threading.Lock()
        self._pending = 0
        #: Jobs refused because the queue was full.
        self.refused = 0

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the worker thread; raises ``InferenceBusy`` when the queue is full."""
        with self._lock:
            if self._pending >= self.max_pending:
                self.refused += 1
                raise InferenceBusy(f"{self.name}: {self._pending} jobs already queued")
            self._pending += 1
        try:
            future: Future[T] = self._executor.submit(fn, *args)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _future: Future[Any] | None) -> None:
        with self._lock:
            self._pending -= 1

    def shutdown(self) -> None:
        """Stop accepting work; running jobs finish on their own (used by tests)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
