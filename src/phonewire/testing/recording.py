"""A stereo recording of a simulated call, as the handset experienced it.

Left channel: what the caller said, on the send clock. Right channel: what the caller heard
of the bot, on the playout timeline (after queueing, truncated by clears, with underrun
gaps as silence), so listening to the file tells you what a real caller would have heard,
not what the bot believes it sent.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from phonewire.audio.wav import write_wav
from phonewire.testing.playout import PlayedSpan

__all__ = ["CallRecorder"]


class CallRecorder:
    """Collects the caller's side during the call; mixes in the bot's side at the end.

    Memory is bounded: at most ``max_duration_s`` of caller audio is kept (the bot side is
    bounded by the playout's own queue cap), 32 KB per second at 8 kHz for both together.
    """

    def __init__(self, sample_rate: int, max_duration_s: float) -> None:
        self.sample_rate = sample_rate
        self._max_bytes = 2 * int(sample_rate * max_duration_s)
        self._caller = bytearray()

    def add_caller(self, pcm: bytes) -> None:
        """Append the caller's next packet (packets are contiguous on the timeline)."""
        room = self._max_bytes - len(self._caller)
        if room > 0:
            self._caller += pcm[:room]

    def stereo(self, bot_spans: Sequence[PlayedSpan], until_s: float) -> bytes:
        """Interleaved s16le stereo, caller left and bot right, cut at ``until_s``."""
        length = min(self._max_bytes // 2, round(until_s * self.sample_rate))
        left = np.zeros(length, dtype="<i2")
        right = np.zeros(length, dtype="<i2")
        caller = np.frombuffer(bytes(self._caller), dtype="<i2")[:length]
        left[: caller.size] = caller
        for span in bot_spans:
            _place(right, span, self.sample_rate)
        return np.column_stack((left, right)).astype("<i2").tobytes()

    def write(self, path: str | os.PathLike[str], bot_spans: Sequence[PlayedSpan], until_s: float) -> None:
        write_wav(path, self.stereo(bot_spans, until_s), self.sample_rate, channels=2)


def _place(track: np.ndarray, span: PlayedSpan, rate: int) -> None:
    start = round(span.start_s * rate)
    if start >= track.size:
        return
    samples = np.frombuffer(bytes(span.pcm), dtype="<i2")[: track.size - start]
    track[start : start + samples.size] = samples
