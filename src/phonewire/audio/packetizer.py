"""Cutting an arbitrary byte stream into fixed-size media packets.

Carriers expect media in fixed frames (e.g. 160 bytes of μ-law = 20 ms at 8 kHz) while TTS
engines produce chunks of any size, so the output transport pushes encoded audio through a
``Packetizer`` and sends each packet it returns. It runs for every packet of every call, so the
remainder lives in a ``bytearray`` that is sliced through a ``memoryview`` and trimmed once per
push: cost is linear in the bytes pushed, never quadratic in the backlog.
"""

from __future__ import annotations

__all__ = ["Packetizer"]


class Packetizer:
    """Splits pushed bytes into ``packet_bytes``-sized packets and keeps the remainder.

    ``flush`` returns the leftover tail padded with ``pad_byte`` either to a multiple of
    ``multiple_of`` (e.g. 2 so 16-bit PCM never ends on half a sample) or, with ``exact=True``,
    to a full packet for carriers that reject short frames. Pad with the codec's silence
    (0xFF for μ-law, 0xD5 for A-law, 0 for PCM).
    """

    __slots__ = ("_buffer", "exact", "multiple_of", "packet_bytes", "pad_byte")

    def __init__(self, packet_bytes: int, *, multiple_of: int = 1, exact: bool = False, pad_byte: int = 0) -> None:
        if packet_bytes <= 0:
            raise ValueError(f"packet_bytes must be positive, got {packet_bytes}")
        if multiple_of <= 0 or packet_bytes % multiple_of:
            raise ValueError(
                f"multiple_of must be a positive divisor of packet_bytes ({packet_bytes}), got {multiple_of}"
            )
        if not 0 <= pad_byte <= 0xFF:
            raise ValueError(f"pad_byte must be in 0..255, got {pad_byte}")
        self.packet_bytes = packet_bytes
        self.multiple_of = multiple_of
        self.exact = exact
        self.pad_byte = pad_byte
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for a full packet."""
        return len(self._buffer)

    def push(self, data: bytes) -> list[bytes]:
        """Append ``data`` and return every full packet now available (possibly none)."""
        size = self.packet_bytes
        buffer = self._buffer
        if not buffer and len(data) == size:
            return [bytes(data)]  # the common steady-state case: a chunk that is exactly one packet
        buffer += data
        full = len(buffer) - len(buffer) % size
        if not full:
            return []
        with memoryview(buffer) as view:
            packets = [bytes(view[start : start + size]) for start in range(0, full, size)]
        del buffer[:full]  # bytearray trims its head in O(1) amortised, no copy of the remainder
        return packets

    def flush(self) -> bytes | None:
        """Return the padded remainder (None if nothing is held) and empty the buffer."""
        if not self._buffer:
            return None
        target = self.packet_bytes if self.exact else -(-len(self._buffer) // self.multiple_of) * self.multiple_of
        tail = bytes(self._buffer) + bytes([self.pad_byte]) * (target - len(self._buffer))
        self._buffer.clear()
        return tail

    def clear(self) -> None:
        """Drop the remainder without sending it (interruption/barge-in)."""
        self._buffer.clear()

    def __repr__(self) -> str:
        return f"Packetizer(packet_bytes={self.packet_bytes}, buffered={self.buffered})"
