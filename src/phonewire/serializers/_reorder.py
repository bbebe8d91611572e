"""A tiny jitter buffer that puts numbered media packets back in order.

Telnyx documents that media frames may arrive out of order and tells receivers to reorder
them by ``chunk``. A real jitter buffer waits on a clock; a serializer has no clock, so this
one measures its patience in packets instead: it holds at most ``window`` packets that
arrived ahead of a missing one. When one more arrives the gap is given up (counted as
lost) and the held packets are released in order, so audio is never delayed by more than
``window`` packets (3 packets = 60 ms at Telnyx's 20 ms framing).

A packet whose number was already released is a late duplicate (or arrived after its gap
was given up): it is dropped and counted, never played out of order. A jump of more than
``resync_distance`` packets in either direction is taken as the sender restarting its
counter, not as loss or lateness: the buffer flushes and follows the new numbering.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["ReorderBuffer", "ReorderStats"]

T = TypeVar("T")

#: How many recently given-up numbers are remembered to tell "late" from "duplicate".
_REMEMBERED_GAPS = 64


@dataclass(slots=True)
class ReorderStats:
    """Counters a transport can log or export; they only ever grow."""

    received: int = 0
    #: Packets that filled a gap and were released after higher-numbered ones arrived.
    reordered: int = 0
    #: Packets whose number had already been released (dropped).
    duplicates: int = 0
    #: Packets that arrived after their gap had been given up (dropped).
    late: int = 0
    #: Numbers never received before their gap was given up.
    lost: int = 0
    #: Times the sender's counter jumped and the buffer re-synchronised.
    resyncs: int = 0


class ReorderBuffer(Generic[T]):
    """Releases items in ascending ``number`` order, holding at most ``window`` items.

    ``first_expected`` is the number the sender starts counting from (1 for Telnyx
    ``chunk``); if the first packet seen is a little above it, the buffer waits (within
    the window) for the earlier ones instead of declaring them late. ``window=0`` turns
    reordering off: packets are released as they come, and only late ones are dropped.
    """

    __slots__ = ("_next", "_pending", "_skipped", "first_expected", "resync_distance", "stats", "window")

    def __init__(self, window: int = 3, *, first_expected: int | None = 1, resync_distance: int = 50) -> None:
        if window < 0:
            raise ValueError(f"window must be >= 0, got {window}")
        if resync_distance <= window:
            raise ValueError("resync_distance must be larger than window")
        self.window = window
        self.first_expected = first_expected
        self.resync_distance = resync_distance
        self.stats = ReorderStats()
        self._next: int | None = None
        self._pending: dict[int, T] = {}
        self._skipped: deque[int] = deque(maxlen=_REMEMBERED_GAPS)

    @property
    def held(self) -> int:
        """Packets currently waiting for an earlier one."""
        return len(self._pending)

    def push(self, number: int, item: T) -> list[T]:
        """Add one packet; return the packets that are now due, in order (possibly none)."""
        self.stats.received += 1
        out: list[T] = []
        expected = self._next
        if expected is None:
            first = self.first_expected
            within = first is not None and first <= number <= first + self.window
            expected = self._next = first if within and first is not None else number
        if number < expected:
            if expected - number <= self.resync_distance:
                if number in self._skipped:
                    self.stats.late += 1
                else:
                    self.stats.duplicates += 1
                return []
            out = self.flush()  # the sender restarted its counter
            self.stats.resyncs += 1
            expected = self._next = number
        if number in self._pending:
            self.stats.duplicates += 1
            return out
        if number == expected and self._pending:
            self.stats.reordered += 1
        self._pending[number] = item
        self._drain(out)
        return out

    def flush(self) -> list[T]:
        """Release everything held, in order (end of stream); the next push starts afresh."""
        out = [self._pending[n] for n in sorted(self._pending)]
        self._pending.clear()
        self._next = None
        return out

    def _drain(self, out: list[T]) -> None:
        pending = self._pending
        assert self._next is not None
        while True:
            nxt = self._next
            while nxt in pending:
                out.append(pending.pop(nxt))
                nxt += 1
            self._next = nxt
            if len(pending) <= self.window:
                return
            lowest = min(pending)
            if lowest - nxt > self.resync_distance:
                self.stats.resyncs += 1
            else:
                self.stats.lost += lowest - nxt
                self._skipped.extend(range(nxt, lowest))
            self._next = lowest
