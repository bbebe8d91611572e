"""EnergyVADAnalyzer: the model-free fallback."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from phonewire.audio.vad import EnergyVADAnalyzer, VADState

SPEAKING, QUIET = VADState.SPEAKING, VADState.QUIET


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 44100, 48000])
def test_any_sample_rate_works_with_20_ms_windows(rate: int, signals: SimpleNamespace) -> None:
    analyzer = EnergyVADAnalyzer(sample_rate=rate)
    assert analyzer.window_secs == pytest.approx(0.02, abs=1 / rate)
    assert analyzer.analyze(signals.to_pcm(signals.silence(1.0, rate))) == []
    assert analyzer.pending_windows() == 0


@pytest.mark.parametrize("rate", [0, -16000, 8000.5])
def test_a_rate_that_is_not_a_positive_integer_raises_a_value_error(rate: object) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        EnergyVADAnalyzer(sample_rate=rate)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["hello_8k.wav", "hello_16k.wav", "yes_8k.wav"])
def test_speech_over_a_quiet_line_is_one_turn(name: str, signals: SimpleNamespace) -> None:
    rate, speech = signals.load_wav(name)
    lead, tail = signals.white_noise(0.5, rate, -65.0, seed=1), signals.white_noise(1.5, rate, -65.0, seed=2)
    transitions = EnergyVADAnalyzer(sample_rate=rate).analyze(signals.to_pcm(lead, speech, tail))

    assert [t.state for t in transitions] == [SPEAKING, QUIET]
    assert transitions[0].speech_start_time == pytest.approx(0.5, abs=0.1)
    assert transitions[0].stream_time - 0.5 <= 0.2 + 0.1


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("level", [-30.0, -10.0])
def test_steady_noise_and_hum_from_the_first_window_never_reach_speaking(
    rate: int, level: float, signals: SimpleNamespace
) -> None:
    for noise in (signals.white_noise(5.0, rate, level, seed=5), signals.hum(5.0, rate, level)):
        states, _, transitions = signals.run_windows(EnergyVADAnalyzer(sample_rate=rate), signals.to_pcm(noise))
        assert SPEAKING not in states
        assert transitions == []


def test_the_noise_floor_follows_the_line_and_reset_forgets_it(signals: SimpleNamespace) -> None:
    analyzer = EnergyVADAnalyzer(sample_rate=8000)
    assert analyzer.noise_floor_dbfs is None
    analyzer.analyze(signals.to_pcm(signals.white_noise(1.0, 8000, -40.0, seed=6)))
    assert analyzer.noise_floor_dbfs == pytest.approx(-40.0, abs=1.0)

    analyzer.reset()
    assert analyzer.noise_floor_dbfs is None


def test_chunked_and_whole_feeding_agree(hello_8k: np.ndarray, signals: SimpleNamespace) -> None:
    pcm = signals.to_pcm(signals.silence(0.3, 8000), hello_8k, signals.silence(1.2, 8000))
    whole = EnergyVADAnalyzer(sample_rate=8000).analyze(pcm)
    chunked = EnergyVADAnalyzer(sample_rate=8000)
    pieces = [t for i in range(0, len(pcm), 331) for t in chunked.analyze(pcm[i : i + 331])]

    assert pieces == whole
    assert [t.state for t in whole] == [SPEAKING, QUIET]
