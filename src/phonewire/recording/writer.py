"""The recording writer: one thread per server that does every recording's disk I/O.

Why a thread with a bounded queue: the event loop must never wait on a disk, and a call's
audio must never pile up in memory because a disk is slow. The loop side hands finished
stereo chunks (about a second each) to ``put``, which never blocks: when the queue is full
the chunk is dropped and counted on its recording (``dropped_chunks`` in the sidecar), a gap
of silence in the file rather than a stall in a call. Opening a sink happens here too.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["RecordingWriter"]

logger = logging.getLogger("phonewire.recording")

#: Chunks (about a second of audio each) waiting for the disk, for all calls together.
DEFAULT_QUEUE_CHUNKS = 512


class RecordingWriter:
    def __init__(self, max_chunks: int = DEFAULT_QUEUE_CHUNKS) -> None:
        # Unbounded as a queue, bounded by count: audio chunks beyond ``max_chunks`` waiting
        # are refused; opening and closing a recording (one each per call) always get in.
        self._queue: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...], bool] | None] = queue.SimpleQueue()
        self._max_chunks = max_chunks
        self._waiting = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, fn: Callable[..., Any], *args: Any, must: bool = False) -> bool:
        """Run ``fn(*args)`` on the writer thread, never blocking; False (dropped) when
        ``max_chunks`` audio chunks already wait. ``must`` (open, close) is never dropped."""
        self._ensure_thread()
        with self._lock:
            if not must:
                if self._waiting >= self._max_chunks:
                    self.dropped += 1
                    return False
                self._waiting += 1
        self._queue.put((fn, args, not must))
        return True

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="phonewire-recording", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args, counted = item
            try:
                fn(*args)
            except Exception:
                logger.exception("! recording write failed (the call is unaffected)")
            finally:
                if counted:
                    with self._lock:
                        self._waiting -= 1

    def stop(self, timeout: float = 5.0) -> None:
        """Finish what is queued, then end the thread (bounded). Call it off the loop."""
        thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("! recording writer still busy after %.0fs at shutdown", timeout)
        self._thread = None
