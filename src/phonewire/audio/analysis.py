"""Small signal helpers for tests, the call simulator's report and the benchmarks.

They let assertions talk about what a listener would notice (level, pitch) instead of raw bytes,
so tests survive harmless changes such as a different resampler filter.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["dominant_frequency", "rms_dbfs", "silence", "tone"]


def _samples(pcm: bytes) -> np.ndarray:
    """s16le bytes -> float64 samples in [-1, 1); an odd trailing byte is ignored."""
    count = len(pcm) // 2
    return np.frombuffer(pcm, dtype="<i2", count=count).astype(np.float64) / 32768.0


def rms_dbfs(pcm: bytes) -> float:
    """RMS level relative to full scale (a full-scale sine is about -3 dBFS); -inf for silence."""
    samples = _samples(pcm)
    if samples.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(samples * samples)))
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def dominant_frequency(pcm: bytes, sample_rate: int) -> float:
    """Frequency in Hz of the strongest spectral peak (Hann window); 0.0 for empty or silent input.

    The mean is removed first so a DC offset does not win, and the peak is refined by parabolic
    interpolation of the log magnitude, giving sub-bin accuracy even on 20 ms snippets.
    """
    samples = _samples(pcm)
    if samples.size < 2:
        return 0.0
    samples = samples - samples.mean()
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    peak = int(np.argmax(spectrum))
    if spectrum[peak] == 0.0:
        return 0.0
    offset = 0.0
    if 0 < peak < spectrum.size - 1:
        left, centre, right = np.log(spectrum[peak - 1 : peak + 2] + 1e-300)
        denominator = left - 2.0 * centre + right
        offset = 0.5 * (left - right) / denominator if denominator != 0 else 0.0
    return (peak + offset) * sample_rate / samples.size


def tone(freq_hz: float, duration_s: float, sample_rate: int, amplitude: float = 0.3) -> bytes:
    """A s16le sine at ``amplitude`` of full scale, starting at phase 0."""
    n = np.arange(round(duration_s * sample_rate))
    wave = amplitude * 32767.0 * np.sin(2.0 * np.pi * freq_hz * n / sample_rate)
    return np.clip(np.rint(wave), -32768, 32767).astype("<i2").tobytes()


def silence(duration_s: float, sample_rate: int) -> bytes:
    """Digital silence in s16le, ``round(duration_s * sample_rate)`` samples long."""
    return bytes(2 * round(duration_s * sample_rate))
