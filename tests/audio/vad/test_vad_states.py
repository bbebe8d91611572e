"""The Silero analyzer's state machine on real (synthetic) speech, silence and noise."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest

from phonewire.audio.vad import SileroVADAnalyzer, VADParams, VADState

QUIET, STARTING, SPEAKING, STOPPING = VADState.QUIET, VADState.STARTING, VADState.SPEAKING, VADState.STOPPING
WINDOW_SECS = 0.032
# onset tolerance: the window holding the onset, plus one for the model to respond
ONSET_TOLERANCE = 0.1
# speech must be reported within start_secs plus window alignment plus one model window
DETECTION_MARGIN = 0.1


def test_speech_after_silence_goes_quiet_to_starting_to_speaking(
    hello_8k: np.ndarray, signals: SimpleNamespace
) -> None:
    analyzer = SileroVADAnalyzer(sample_rate=8000)
    line_noise = signals.white_noise(0.5, 8000, -65.0, seed=1)
    pcm = signals.to_pcm(line_noise, hello_8k)
    states, _, transitions = signals.run_windows(analyzer, pcm)

    assert signals.collapse(states)[:3] == [QUIET, STARTING, SPEAKING]
    first_speaking = states.index(SPEAKING)
    # STARTING lasts start_secs: 6 windows of 32 ms, the last of which becomes SPEAKING
    assert states[first_speaking - 5 : first_speaking] == [STARTING] * 5
    assert [t.state for t in transitions] == [SPEAKING]
    assert transitions[0].previous is STARTING


def test_silence_after_speech_goes_speaking_to_stopping_to_quiet(
    hello_8k: np.ndarray, signals: SimpleNamespace
) -> None:
    analyzer = SileroVADAnalyzer(sample_rate=8000)
    line_noise = signals.white_noise(1.5, 8000, -65.0, seed=2)
    pcm = signals.to_pcm(hello_8k, line_noise)
    states, _, transitions = signals.run_windows(analyzer, pcm)

    assert signals.collapse(states)[-3:] == [SPEAKING, STOPPING, QUIET]
    last_speaking = len(states) - 1 - states[::-1].index(SPEAKING)
    # stop_secs = 0.8 s = 25 windows: 24 in STOPPING, the 25th lands in QUIET
    assert states[last_speaking + 1 : last_speaking + 26] == [STOPPING] * 24 + [QUIET]
    assert [t.state for t in transitions] == [SPEAKING, QUIET]
    assert transitions[1].previous is STOPPING
    speech_end = len(hello_8k) / 8000
    assert 0.8 <= transitions[1].stream_time - speech_end <= 0.8 + 0.2


def test_a_blip_shorter_than_start_secs_goes_starting_back_to_quiet(
    hello_8k: np.ndarray, signals: SimpleNamespace
) -> None:
    blip = hello_8k[8000 : 8000 + 640]  # 80 ms of a vowel
    analyzer = SileroVADAnalyzer(sample_rate=8000)
    pcm = signals.to_pcm(signals.silence(0.5, 8000), blip, signals.white_noise(1.0, 8000, -65.0, seed=3))
    states, _, transitions = signals.run_windows(analyzer, pcm)

    assert signals.collapse(states) == [QUIET, STARTING, QUIET]
    assert transitions == []


def test_speech_resuming_within_stop_secs_goes_stopping_back_to_speaking_in_one_turn(
    hello_8k: np.ndarray, signals: SimpleNamespace
) -> None:
    analyzer = SileroVADAnalyzer(sample_rate=8000)
    pause = signals.silence(0.4, 8000)
    pcm = signals.to_pcm(hello_8k, pause, hello_8k, signals.silence(1.5, 8000))
    states, _, transitions = signals.run_windows(analyzer, pcm)

    visited = signals.collapse(states)
    assert [STOPPING, SPEAKING] == visited[visited.index(STOPPING) : visited.index(STOPPING) + 2]
    assert visited[-1] is QUIET
    assert [t.state for t in transitions] == [SPEAKING, QUIET]


def test_a_pause_longer_than_stop_secs_ends_the_turn_and_the_next_speech_starts_another(
    yes_8k: np.ndarray, signals: SimpleNamespace
) -> None:
    analyzer = SileroVADAnalyzer(sample_rate=8000)
    gap = signals.silence(1.5, 8000)
    transitions = analyzer.analyze(signals.to_pcm(yes_8k, gap, yes_8k, gap))

    assert [t.state for t in transitions] == [SPEAKING, QUIET, SPEAKING, QUIET]
    second_onset = (len(yes_8k) + len(gap)) / 8000
    assert transitions[2].speech_start_time == pytest.approx(second_onset, abs=ONSET_TOLERANCE)


@pytest.mark.parametrize("name", ["hello_8k.wav", "hello_16k.wav", "yes_8k.wav"])
@pytest.mark.parametrize("onset", [0.0, 0.05])
def test_speech_in_the_first_100_ms_of_a_call_is_not_missed(name: str, onset: float, signals: SimpleNamespace) -> None:
    rate, speech = signals.load_wav(name)
    analyzer = SileroVADAnalyzer(sample_rate=rate)
    transitions = analyzer.analyze(signals.to_pcm(signals.silence(onset, rate), speech))

    assert transitions, "no SPEAKING reported"
    started = transitions[0]
    assert started.state is SPEAKING
    assert started.speech_start_time is not None
    assert abs(started.speech_start_time - onset) <= ONSET_TOLERANCE
    lag = started.stream_time - onset
    assert analyzer.params.start_secs - WINDOW_SECS <= lag <= analyzer.params.start_secs + DETECTION_MARGIN


NOT_SPEECH: dict[str, Callable[[SimpleNamespace, int], np.ndarray]] = {
    "digital silence": lambda s, rate: s.silence(10.0, rate),
    "line silence at -70 dBFS": lambda s, rate: s.white_noise(10.0, rate, -70.0, seed=3),
    "white noise at -30 dBFS": lambda s, rate: s.white_noise(10.0, rate, -30.0, seed=4),
    "120 Hz hum at -20 dBFS": lambda s, rate: s.hum(10.0, rate, -20.0),
}


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("kind", NOT_SPEECH)
def test_silence_noise_and_hum_never_reach_speaking(rate: int, kind: str, signals: SimpleNamespace) -> None:
    analyzer = SileroVADAnalyzer(sample_rate=rate)
    states, confidences, transitions = signals.run_windows(analyzer, signals.to_pcm(NOT_SPEECH[kind](signals, rate)))

    assert SPEAKING not in states, kind
    assert transitions == []
    assert max(confidences) < 0.5, kind  # a wide margin below the 0.7 threshold


def test_speech_below_min_volume_is_ignored_from_the_first_window(
    hello_8k: np.ndarray, signals: SimpleNamespace
) -> None:
    quiet_speech = hello_8k.astype(np.float64) * 10 ** (-40 / 20)  # ~-64 dBFS RMS
    pcm = signals.to_pcm(quiet_speech, signals.silence(1.0, 8000))

    assert SileroVADAnalyzer(sample_rate=8000).analyze(pcm) == []
    permissive = SileroVADAnalyzer(sample_rate=8000, params=VADParams(min_volume=0.3))
    assert [t.state for t in permissive.analyze(pcm)] == [SPEAKING, QUIET]


@pytest.mark.parametrize("chunk_bytes", [320, 333, 7, 1])
def test_feeding_small_chunks_gives_the_same_transitions_as_one_buffer(
    chunk_bytes: int, hello_8k: np.ndarray, yes_8k: np.ndarray, signals: SimpleNamespace
) -> None:
    gap = signals.silence(0.4, 8000)
    pcm = signals.to_pcm(yes_8k, gap, hello_8k, signals.silence(1.0, 8000), yes_8k, gap)
    whole = SileroVADAnalyzer(sample_rate=8000).analyze(pcm)

    chunked = SileroVADAnalyzer(sample_rate=8000)
    pieces = [chunked.analyze(pcm[i : i + chunk_bytes]) for i in range(0, len(pcm), chunk_bytes)]

    assert [t for piece in pieces for t in piece] == whole
    # a 0.4 s pause stays inside a turn; 1.0 s ends it; the last turn is still open
    assert [t.state for t in whole] == [SPEAKING, QUIET, SPEAKING]


def test_a_transition_in_the_middle_of_a_long_buffer_is_not_undone_by_later_windows(
    hello_8k: np.ndarray, signals: SimpleNamespace
) -> None:
    """Pipecat only compared counters at the end of each buffer, so speech followed by silence
    in one buffer could vanish. Per-window evaluation reports both boundaries."""
    analyzer = SileroVADAnalyzer(sample_rate=8000)
    transitions = analyzer.analyze(signals.to_pcm(hello_8k, signals.silence(2.0, 8000)))

    assert [t.state for t in transitions] == [SPEAKING, QUIET]
    assert transitions[0].stream_time < 0.5


def test_reset_after_a_forced_stop_debounces_the_next_speech_again(
    hello_8k: np.ndarray, signals: SimpleNamespace
) -> None:
    analyzer = SileroVADAnalyzer(sample_rate=8000)
    analyzer.analyze(signals.to_pcm(hello_8k[:8000]))
    assert analyzer.state is SPEAKING

    analyzer.reset()
    assert analyzer.state is QUIET
    resumed_at = analyzer.stream_time
    transitions = analyzer.analyze(signals.to_pcm(hello_8k[8000:]))

    assert transitions[0].state is SPEAKING
    assert transitions[0].stream_time - resumed_at >= analyzer.params.start_secs - WINDOW_SECS


def test_set_params_mid_turn_keeps_the_turn(hello_8k: np.ndarray, signals: SimpleNamespace) -> None:
    analyzer = SileroVADAnalyzer(sample_rate=8000)
    analyzer.analyze(signals.to_pcm(hello_8k[:8000]))
    analyzer.set_params(VADParams(stop_secs=0.3))

    assert analyzer.state is SPEAKING
    transitions = analyzer.analyze(signals.to_pcm(hello_8k[8000:], signals.silence(0.6, 8000)))
    assert [t.state for t in transitions] == [QUIET]


def test_stream_time_counts_every_sample_fed_including_those_dropped_by_reset(
    signals: SimpleNamespace,
) -> None:
    analyzer = SileroVADAnalyzer(sample_rate=8000)
    analyzer.analyze(signals.to_pcm(signals.silence(0.1, 8000)))  # 800 samples = 3 windows + 32
    assert analyzer.stream_time == pytest.approx(3 * 256 / 8000)

    analyzer.reset()
    assert analyzer.stream_time == pytest.approx(0.1)
    assert analyzer.pending_windows() == 0
