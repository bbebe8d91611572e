"""AudioRing: the recent caller audio, addressed by absolute byte offset, for replay.

Why: a live connection can drop mid-utterance. Audio Deepgram had not yet finalised would be
lost with it, so every packet is kept here (bounded: ``max_bytes``, e.g. 10 s) and the sender
reads from its own offset. When a final ``Results`` arrives, the audio it covers is marked
finalised; after a reconnect the sender restarts at that mark, so the new connection hears
the whole unfinished utterance again. Sans-I/O and O(1) amortised per packet (the front is
trimmed only when the buffer reaches twice its bound).
"""

from __future__ import annotations

__all__ = ["AudioRing"]


class AudioRing:
    def __init__(self, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("AudioRing(max_bytes) must be positive")
        self.max_bytes = max_bytes
        self._buf = bytearray()
        self._start = 0  # absolute offset of _buf[0]
        #: Audio up to here is covered by a final transcript (absolute offset).
        self.finalized = 0
        #: Bytes that fell out of the ring before they were finalised and could not be replayed.
        self.lost_bytes = 0

    @property
    def start(self) -> int:
        """Oldest offset still held (after trimming to ``max_bytes``)."""
        return max(self._start, self.end - self.max_bytes)

    @property
    def end(self) -> int:
        """Offset just past the newest byte."""
        return self._start + len(self._buf)

    def append(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) >= 2 * self.max_bytes:
            cut = len(self._buf) - self.max_bytes
            del self._buf[:cut]
            self._start += cut

    def read(self, offset: int, limit: int) -> tuple[int, bytes]:
        """Up to ``limit`` bytes from ``offset`` (moved forward to ``start`` if it fell out)."""
        offset = max(offset, self.start)
        i = offset - self._start
        return offset, bytes(self._buf[i : i + limit])

    def mark_finalized(self, offset: int) -> None:
        self.finalized = min(max(self.finalized, offset), self.end)

    def replay_from(self) -> int:
        """Where a new connection should start: the last finalised point, if still held."""
        start = self.start
        if self.finalized < start:
            self.lost_bytes += start - self.finalized
            self.finalized = start
        return self.finalized
