"""``VADParams.early_stop_secs``: one STOPPING report at that much silence inside a run (the
caller *may* be stopping), once per silence run; the SPEAKING and QUIET reports - onsets, so
barge-in, and stops - are exactly as without it."""

from __future__ import annotations

import numpy as np
import pytest

from phonewire.audio.vad import VADParams, VADState
from phonewire.audio.vad.energy import EnergyVADAnalyzer
from phonewire.exceptions import ConfigurationError

RATE = 8000


def tone(secs: float, dbfs: float = -20.0) -> np.ndarray:
    t = np.arange(int(secs * RATE)) / RATE
    return (10 ** (dbfs / 20) * np.sqrt(2) * np.sin(2 * np.pi * 300 * t) * 32767).astype("<i2")


def quiet(secs: float) -> np.ndarray:
    return np.zeros(int(secs * RATE), "<i2")


def reports(early: float, *parts: np.ndarray) -> list[tuple[VADState, float]]:
    vad = EnergyVADAnalyzer(sample_rate=RATE, params=VADParams(stop_secs=0.2, early_stop_secs=early))
    return [(t.state, round(t.stream_time, 3)) for t in vad.analyze(np.concatenate(parts).tobytes())]


# speech, a 0.13 s gap (longer than 0.1, shorter than 0.2: the caller goes on), speech, silence
PARTS = (quiet(0.32), tone(0.64), quiet(0.13), tone(0.64), quiet(0.64))


def test_one_early_report_per_silence_run_and_the_rest_unchanged() -> None:
    without, with_early = reports(0.0, *PARTS), reports(0.1, *PARTS)
    assert [s for s, _ in without] == [VADState.SPEAKING, VADState.QUIET]
    assert [r for r in with_early if r[0] is not VADState.STOPPING] == without  # onset and stop unchanged
    early = [t for s, t in with_early if s is VADState.STOPPING]
    assert len(early) == 2  # in the gap (then speech resumed) and before the stop
    stop = without[1][1]
    assert abs((stop - early[1]) - 0.1) < 0.02  # 0.1 s of silence before the stop (whole windows)


def test_off_by_default_and_when_not_shorter_than_stop_secs() -> None:
    assert VADParams().early_stop_secs == 0.0
    assert [s for s, _ in reports(0.2, *PARTS)] == [VADState.SPEAKING, VADState.QUIET]
    with pytest.raises(ConfigurationError):
        VADParams(early_stop_secs=-0.1)
