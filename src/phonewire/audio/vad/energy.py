"""A model-free VAD for tiny deployments: loudness above a tracked noise floor.

It needs no onnxruntime (saving ~80 MB installed and ~60 MB RSS) and costs a few microseconds per
20 ms window, at any sample rate. It cannot tell speech from other sounds that rise above the line's
background (a door, music, a second voice), so prefer :class:`SileroVADAnalyzer` whenever the
model fits.

Confidence is the window's level above the noise floor, scaled so that
``NOISE_SNR_FULL_DB`` dB above it is 1.0 (0.7, the default threshold, is 14 dB). The floor starts
at the level of the first window, follows any quieter window at once (down to
``NOISE_FLOOR_MIN_DBFS``), and creeps up by
``NOISE_FLOOR_RISE_DB_PER_SEC`` while it is louder, so steady noise (hum, hiss, a fan) is never
mistaken for speech for longer than it takes to climb the gap, while speech, whose level dips
between syllables, keeps pulling the floor back down.
"""

from __future__ import annotations

import numpy as np

from phonewire.audio.vad.analyzer import VADAnalyzer, _rms_dbfs
from phonewire.audio.vad.params import VADParams

__all__ = [
    "ENERGY_WINDOW_SECS",
    "NOISE_FLOOR_MIN_DBFS",
    "NOISE_FLOOR_RISE_DB_PER_SEC",
    "NOISE_SNR_FULL_DB",
    "EnergyVADAnalyzer",
]

ENERGY_WINDOW_SECS = 0.02
"""20 ms: the telephony packet size, so each packet is decided as it arrives."""
NOISE_FLOOR_RISE_DB_PER_SEC = 5.0
"""How fast the floor follows a louder background. Faster learns noise sooner but erodes long
vowels; 5 dB/s moves the floor only 1 dB during a 200 ms syllable."""
NOISE_FLOOR_MIN_DBFS = -70.0
"""The floor never goes lower. Telephony carries runs of exact zeros (muted callers, μ-law 0xFF
fill, gaps between words in synthetic speech); without this limit one such run would sink the
floor to nothing and the ordinary line noise after it would count as speech for seconds."""
NOISE_SNR_FULL_DB = 20.0
"""Level above the floor that counts as certain speech (confidence 1.0)."""


class EnergyVADAnalyzer(VADAnalyzer):
    """RMS-over-noise-floor VAD with 20 ms windows at any sample rate."""

    def __init__(self, *, sample_rate: int | None = None, params: VADParams | None = None) -> None:
        self._floor_dbfs: float | None = None
        super().__init__(sample_rate=sample_rate, params=params)

    @property
    def window_samples(self) -> int:
        return max(1, round(self._require_rate() * ENERGY_WINDOW_SECS))

    @property
    def noise_floor_dbfs(self) -> float | None:
        """The tracked background level, None before the first window."""
        return self._floor_dbfs

    def voice_confidence(self, window: np.ndarray) -> float:
        level = _rms_dbfs(window)
        floor = max(level, NOISE_FLOOR_MIN_DBFS) if self._floor_dbfs is None else self._floor_dbfs
        confidence = min(1.0, max(0.0, (level - floor) / NOISE_SNR_FULL_DB))
        self._floor_dbfs = self._next_floor(floor, level)
        return confidence

    def _next_floor(self, floor: float, level: float) -> float:
        if level <= floor:
            return max(level, NOISE_FLOOR_MIN_DBFS)
        return min(level, floor + NOISE_FLOOR_RISE_DB_PER_SEC * self.window_secs)

    def _reset_model(self) -> None:
        self._floor_dbfs = None
