"""Streaming sample-rate conversion on libsamplerate.

Phone legs run at 8 kHz (sometimes 16 kHz) while speech models want 16/24 kHz and TTS engines
emit 16-48 kHz, so every call resamples in both directions, one 20 ms packet at a time.
libsamplerate's ``sinc_fastest`` converter is used because in streaming mode it returns output
for every input packet with a constant delay of about 2.5 ms (the half-length of its filter),
whereas soxr's stream mode buffers 20-175 ms before emitting anything. Its output is time-aligned
with the input (the filter is primed with zeros), so nothing but that small hold-back is added.

The classes here are synchronous and keep per-stream state; use one instance per direction per
call and never share one between calls.
"""

from __future__ import annotations

import numpy as np
import samplerate

__all__ = ["RateConverter", "StreamResampler"]

_MAX_RATIO = 256.0  # libsamplerate's limit, in both directions
_FLUSH_BLOCK_MS = 10  # zeros fed per round while draining the filter on flush
_MAX_FLUSH_ROUNDS = 100  # the filter holds ~2.5 ms, so one or two rounds suffice; this bounds a misbehaving one


def _validate_rate(name: str, rate: int) -> int:
    """Reject rates that would make libsamplerate fail obscurely deep inside a call."""
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise ValueError(f"{name} must be a positive int, got {rate!r}")
    return rate


_SCALE = np.float32(32768.0)
_LOWEST = np.float32(-32768.0)
_HIGHEST = np.float32(32767.0)


def _to_float(pcm: bytes) -> np.ndarray:
    """s16le bytes -> float32 in [-1, 1), the format libsamplerate works in."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / _SCALE


def _to_pcm(samples: np.ndarray) -> bytes:
    """float32 -> s16le, rounding and clipping because the sinc filter can overshoot full scale.

    Works in place on one temporary: this runs for every packet, and np.clip's scalar handling
    alone costs more than the arithmetic.
    """
    scaled = samples * _SCALE
    np.rint(scaled, out=scaled)
    np.maximum(scaled, _LOWEST, out=scaled)
    np.minimum(scaled, _HIGHEST, out=scaled)
    return scaled.astype("<i2").tobytes()


class StreamResampler:
    """Resamples a mono s16le stream from ``in_rate`` to ``out_rate`` packet by packet.

    Each ``process`` call returns the output that is ready, which after the first packet is the
    ideal ``len(input) * ratio`` give or take a sample; about 2.5 ms is held back inside the
    filter until more input arrives or ``flush`` drains it. An odd trailing byte is carried over
    to the next call so packets split mid-sample do not corrupt the stream.
    """

    def __init__(self, in_rate: int, out_rate: int, quality: str = "sinc_fastest") -> None:
        self.in_rate = _validate_rate("in_rate", in_rate)
        self.out_rate = _validate_rate("out_rate", out_rate)
        self.quality = quality
        self._ratio = out_rate / in_rate
        if not 1 / _MAX_RATIO <= self._ratio <= _MAX_RATIO:
            raise ValueError(f"ratio {out_rate}/{in_rate} is outside libsamplerate's 1/256..256 range")
        self._passthrough = in_rate == out_rate
        self._resampler = None if self._passthrough else samplerate.Resampler(quality, channels=1)
        self._carry = b""
        self._samples_in = 0
        self._samples_out = 0

    @property
    def passthrough(self) -> bool:
        """True when the rates match and audio is returned untouched at no cost."""
        return self._passthrough

    def process(self, pcm: bytes) -> bytes:
        """Resample one chunk of s16le audio and return whatever output is ready."""
        if self._resampler is None:
            return pcm
        if self._carry:
            pcm = self._carry + pcm
            self._carry = b""
        if len(pcm) % 2:
            pcm, self._carry = pcm[:-1], pcm[-1:]
        if not pcm:
            return b""
        self._samples_in += len(pcm) // 2
        out = self._resampler.process(_to_float(pcm), self._ratio, end_of_input=False)
        self._samples_out += len(out)
        return _to_pcm(out)

    def flush(self) -> bytes:
        """Drain the tail still inside the filter (end of an utterance), then start afresh.

        The filter is fed silence until it has produced the output owed for all the input seen,
        and the result is trimmed so the stream's total output is ``round(samples_in * ratio)``.
        """
        if self._resampler is None:
            return b""
        owed = self._owed_samples()
        block = np.zeros(max(1, self.in_rate * _FLUSH_BLOCK_MS // 1000), dtype=np.float32)
        chunks: list[np.ndarray] = []
        produced = 0
        for _ in range(_MAX_FLUSH_ROUNDS):
            if produced >= owed:
                break
            out = self._resampler.process(block, self._ratio, end_of_input=False)
            chunks.append(out)
            produced += len(out)
        tail = _to_pcm(np.concatenate(chunks)[:owed]) if chunks else b""
        self.reset()
        return tail

    def reset(self) -> None:
        """Drop all held audio without output (after an interruption/barge-in)."""
        if self._resampler is not None:
            self._resampler.reset()
        self._carry = b""
        self._samples_in = 0
        self._samples_out = 0

    def _owed_samples(self) -> int:
        """Output samples still due: round(samples_in * out/in) minus what was already returned."""
        total = (2 * self._samples_in * self.out_rate + self.in_rate) // (2 * self.in_rate)
        return max(0, total - self._samples_out)

    def __repr__(self) -> str:
        return f"StreamResampler({self.in_rate} -> {self.out_rate}, {self.quality!r})"


class RateConverter:
    """Converts audio of any (possibly changing) input rate to one fixed output rate.

    Use one per direction per call. The input rate is given with every chunk because TTS engines
    and bots may switch rates mid-call; when it changes, the old resampler's flushed tail is
    returned ahead of the new audio so nothing is lost, and a new resampler is created lazily.
    Matching rates are a passthrough.
    """

    def __init__(self, out_rate: int, quality: str = "sinc_fastest") -> None:
        self.out_rate = _validate_rate("out_rate", out_rate)
        self.quality = quality
        self._resampler: StreamResampler | None = None

    @property
    def in_rate(self) -> int | None:
        """The input rate of the current stream, or None before the first chunk."""
        return None if self._resampler is None else self._resampler.in_rate

    def convert(self, pcm: bytes, in_rate: int) -> bytes:
        """Resample ``pcm`` (s16le mono at ``in_rate``) to ``out_rate``."""
        head = b""
        if self._resampler is None or self._resampler.in_rate != in_rate:
            new = StreamResampler(in_rate, self.out_rate, self.quality)  # validate before flushing
            head = self._resampler.flush() if self._resampler is not None else b""
            self._resampler = new
        out = self._resampler.process(pcm)
        return head + out if head else out

    def flush(self) -> bytes:
        """Return the tail held in the current resampler (end of an utterance)."""
        return self._resampler.flush() if self._resampler is not None else b""

    def reset(self) -> None:
        """Drop held audio without output (after an interruption)."""
        if self._resampler is not None:
            self._resampler.reset()

    def __repr__(self) -> str:
        return f"RateConverter({self.in_rate} -> {self.out_rate}, {self.quality!r})"
