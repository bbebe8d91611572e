"""VAD tuning parameters and the loudness scale behind ``min_volume``.

``min_volume`` keeps the familiar 0..1 scale (0.6 by default) but is computed from the RMS level of
each window in dBFS, so it is meaningful from the very first window of a call. The mapping is
linear over 100 dB::

    volume = clamp((dbfs + 110) / 100, 0, 1)        dbfs = 20 * log10(rms), full scale = 1.0

    volume   0.0     0.5     0.6     0.7     0.8     0.9     1.0
    dBFS   <=-110    -60     -50     -40     -30     -20    >=-10

It is the same scale as the loudness normalisation other voice stacks use (−110..−10 LUFS), so a
``min_volume`` copied from such a configuration keeps roughly its meaning. The default 0.6
(−50 dBFS) passes any caller the model can hear (telephone speech sits near −20 to −30 dBFS, ITU-T
P.56 nominal −26 dBov) and rejects line hiss and comfort noise, which sit below −60 dBFS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from phonewire.exceptions import ConfigurationError

__all__ = ["VOLUME_FLOOR_DBFS", "VOLUME_SPAN_DB", "VADParams", "dbfs_to_volume", "volume_to_dbfs"]

VOLUME_FLOOR_DBFS = -110.0
"""The level that maps to volume 0.0."""
VOLUME_SPAN_DB = 100.0
"""dB from volume 0.0 to volume 1.0 (−10 dBFS)."""

_MAX_SECS = 10.0


def dbfs_to_volume(dbfs: float) -> float:
    """Map an RMS level in dBFS onto the 0..1 ``min_volume`` scale (clamped)."""
    if math.isnan(dbfs):
        return 0.0
    return min(1.0, max(0.0, (dbfs - VOLUME_FLOOR_DBFS) / VOLUME_SPAN_DB))


def volume_to_dbfs(volume: float) -> float:
    """The RMS level in dBFS that a ``min_volume`` value stands for."""
    return VOLUME_FLOOR_DBFS + volume * VOLUME_SPAN_DB


@dataclass(frozen=True, slots=True)
class VADParams:
    """How confident, loud and long speech must be before the analyzer changes state.

    Attributes:
        confidence: model probability (0..1] a window needs to count as speech. Silero gives
            0.9-1.0 on speech and at most ~0.1 on noise, hum and silence at 8 and 16 kHz, so 0.7
            has a wide margin on both sides.
        start_secs: speech needed before SPEAKING (rounded to whole windows, at least one). 0.2 s
            rejects clicks, coughs and line bursts yet keeps barge-in quick; "yes" is ~0.3 s.
        stop_secs: silence needed before QUIET. 0.8 s, not Pipecat's 0.2 s: a QUIET ends the
            caller's turn, and people pause 0.3-0.7 s inside a turn (after "Hello,", between
            digits of an order number, while thinking). Silero itself stays high for ~0.1 s after
            the last phoneme, so the turn ends ~0.9 s after speech. Pipelines with a semantic
            end-of-turn model on top should lower it to 0.2-0.3 s and let that model decide.
        min_volume: loudness gate on the 0..1 scale described in this module (0.6 = −50 dBFS).
            The level is tracked with an instant attack and a slow release, so it never delays
            an onset and does not flicker on the quiet consonants inside a word.
        stop_drop_db: once speaking, a window whose own RMS level is this many dB below the
            loudest window of the current speech run counts as silence, whatever the model's
            confidence (0: off, the default). Silero stays confident for ~0.1 s after the last
            phoneme; on a line whose noise sits well below the speech this ends the run at the
            sound's end instead, so the stop comes that much sooner. It only ever turns speech
            windows into silence *inside* a run (SPEAKING/STOPPING), so an onset - and barge-in -
            is unchanged; a noisy line (SNR below ``stop_drop_db``) simply keeps the model's tail.
        early_stop_secs: silence after which the analyzer also reports that the caller *may* be
            stopping (a STOPPING report, before the QUIET one at ``stop_secs``), once per silence
            run (0: off, the default; no effect unless shorter than ``stop_secs``). A segmented
            STT starts transcribing there, so the transcript overlaps the rest of the stop wait
            (a speculative transcript: docs/turn-taking.md). If speech resumes first the report
            is simply followed by more speech; nothing else in the analyzer changes.
    """

    confidence: float = 0.7
    start_secs: float = 0.2
    stop_secs: float = 0.8
    min_volume: float = 0.6
    stop_drop_db: float = 0.0
    early_stop_secs: float = 0.0

    def __post_init__(self) -> None:
        _check_range("confidence", self.confidence, 0.0, 1.0, low_open=True)
        _check_range("start_secs", self.start_secs, 0.0, _MAX_SECS)
        _check_range("stop_secs", self.stop_secs, 0.0, _MAX_SECS)
        _check_range("min_volume", self.min_volume, 0.0, 1.0)
        _check_range("stop_drop_db", self.stop_drop_db, 0.0, 120.0)
        _check_range("early_stop_secs", self.early_stop_secs, 0.0, _MAX_SECS)

    @property
    def min_volume_dbfs(self) -> float:
        """``min_volume`` expressed as an RMS level in dBFS."""
        return volume_to_dbfs(self.min_volume)


def _check_range(name: str, value: float, low: float, high: float, *, low_open: bool = False) -> None:
    """Raise a ConfigurationError (a ValueError) naming the field, the bad value and the range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"VADParams.{name} must be a number, got {value!r}")
    too_low = value <= low if low_open else value < low
    if math.isnan(value) or too_low or value > high:
        bracket = "(" if low_open else "["
        raise ConfigurationError(f"VADParams.{name} must be in {bracket}{low}, {high}], got {value!r}")
