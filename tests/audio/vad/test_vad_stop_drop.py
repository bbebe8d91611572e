"""``VADParams.stop_drop_db``: inside a speech run, a window far below the run's loudest is
silence whatever the model says (the model's confidence tail no longer delays the stop), and
an onset is exactly as it was."""

from __future__ import annotations

import numpy as np

from phonewire.audio.vad import VADParams, VADState
from phonewire.audio.vad.analyzer import VADAnalyzer

RATE = 8000
WINDOW = 256  # 32 ms


class LingeringModel(VADAnalyzer):
    """A model that calls every window speech: the worst case of a confidence tail."""

    @property
    def window_samples(self) -> int:
        return WINDOW

    def voice_confidence(self, window: np.ndarray) -> float:
        return 1.0


def tone(secs: float, dbfs: float) -> np.ndarray:
    t = np.arange(int(secs * RATE)) / RATE
    return (10 ** (dbfs / 20) * np.sqrt(2) * np.sin(2 * np.pi * 300 * t) * 32767).astype("<i2")


def transitions(drop_db: float) -> list[tuple[VADState, float]]:
    vad = LingeringModel(sample_rate=RATE, params=VADParams(stop_secs=0.2, stop_drop_db=drop_db))
    # silence, speech at -20 dBFS for 0.64 s, then a line at -45 dBFS (above min_volume's -50)
    pcm = np.concatenate([np.zeros(int(0.32 * RATE), "<i2"), tone(0.64, -20), tone(1.28, -45)]).tobytes()
    return [(t.state, round(t.stream_time, 3)) for t in vad.analyze(pcm)]


def test_the_stop_comes_at_the_sound_end_and_the_onset_is_unchanged() -> None:
    without, with_drop = transitions(0.0), transitions(20.0)
    # The lingering model never lets the run end; the drop ends it stop_secs after the sound.
    assert [s for s, _ in without] == [VADState.SPEAKING]
    # (this model then hears the loud-enough line as a new run: a real model's noise does not)
    assert [s for s, _ in with_drop][:2] == [VADState.SPEAKING, VADState.QUIET]
    assert without[0] == with_drop[0]  # the onset: unchanged
    assert abs(with_drop[1][1] - (0.32 + 0.64 + 0.192)) <= 0.033


def test_a_line_louder_than_the_drop_keeps_the_models_decision() -> None:
    assert [s for s, _ in transitions(30.0)] == [VADState.SPEAKING]  # -45 is only 25 dB down


def test_stop_drop_db_is_checked() -> None:
    import pytest

    from phonewire.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError):
        VADParams(stop_drop_db=-1.0)
