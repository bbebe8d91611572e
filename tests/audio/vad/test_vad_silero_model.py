"""The shared Silero model: shipped file, one session per process, sharing and batching."""

from __future__ import annotations

import hashlib
import importlib.resources
import subprocess
import sys
import threading
from types import SimpleNamespace

import numpy as np
import psutil
import pytest

from phonewire.audio.vad import SileroModel, SileroVADAnalyzer, VADState, VADTransition, batch_confidences
from phonewire.audio.vad.silero import MODEL_RESET_QUIET_SECS, MODEL_SHA256

SHIPPED_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"
CALLS = 50
TICK_SECS = 0.02  # a telephony packet


def _data_file(name: str) -> bytes:
    return importlib.resources.files("phonewire.audio.vad").joinpath("data", name).read_bytes()


def test_the_shipped_model_is_silero_vad_6_2_3_byte_for_byte() -> None:
    model = _data_file("silero_vad.onnx")

    assert len(model) == 2_327_524
    assert hashlib.sha256(model).hexdigest() == SHIPPED_SHA256 == MODEL_SHA256


def test_the_model_ships_with_its_mit_licence_and_provenance() -> None:
    assert _data_file("LICENSE.silero").startswith(b"MIT License")
    readme = _data_file("README.md").decode()
    assert SHIPPED_SHA256 in readme and "silero-vad" in readme and "6.2.3" in readme


def test_the_shared_model_is_one_object_per_process() -> None:
    assert SileroModel.shared() is SileroModel.shared()
    assert SileroVADAnalyzer(sample_rate=8000).model is SileroModel.shared()


def test_concurrent_first_use_creates_the_shared_model_exactly_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SileroModel, "_shared_instance", None)
    created = []
    original_init = SileroModel.__init__

    def counting_init(self: SileroModel, *args: object, **kwargs: object) -> None:
        created.append(self)
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SileroModel, "__init__", counting_init)
    barrier = threading.Barrier(8)
    results: list[SileroModel] = []

    def first_use() -> None:
        barrier.wait()
        results.append(SileroModel.shared())

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(created) == 1
    assert all(result is created[0] for result in results)


def test_the_session_runs_on_one_thread_and_starts_no_thread_pool() -> None:
    threads_before = psutil.Process().num_threads()
    model = SileroModel()
    model.infer(np.zeros((4, 288), np.float32), np.zeros((2, 4, 128), np.float32), 8000)

    options = model.session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    assert model.session.get_providers() == ["CPUExecutionProvider"]
    assert psutil.Process().num_threads() == threads_before


def test_importing_the_vad_package_does_not_import_onnxruntime() -> None:
    code = "import sys, phonewire.audio.vad; print('onnxruntime' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("rate", [44100, 22050, 48000, 11025, 0, -8000])
def test_an_unsupported_sample_rate_raises_a_value_error_naming_the_supported_ones(rate: int) -> None:
    with pytest.raises(ValueError, match="8000 and 16000 Hz|positive integer"):
        SileroVADAnalyzer(sample_rate=rate)
    analyzer = SileroVADAnalyzer()
    with pytest.raises(ValueError, match=str(rate)):
        analyzer.set_sample_rate(rate)
    assert analyzer.sample_rate is None


@pytest.mark.parametrize("rate", [8000.0, "8000", True])
def test_a_sample_rate_that_is_not_an_int_raises_a_value_error(rate: object) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        SileroVADAnalyzer(sample_rate=rate)  # type: ignore[arg-type]


def test_analyzing_before_a_sample_rate_is_set_raises_a_clear_error() -> None:
    analyzer = SileroVADAnalyzer()
    assert analyzer.pending_windows() == 0
    with pytest.raises(RuntimeError, match="set_sample_rate"):
        analyzer.analyze(b"\x00\x00" * 256)


@pytest.mark.parametrize(("rate", "window", "context"), [(8000, 256, 32), (16000, 512, 64)])
def test_both_telephony_rates_use_32_ms_windows(rate: int, window: int, context: int) -> None:
    analyzer = SileroVADAnalyzer(sample_rate=rate)
    assert (analyzer.window_samples, analyzer.context_samples) == (window, context)
    assert analyzer.window_secs == pytest.approx(0.032)


def test_changing_the_sample_rate_resets_the_analyzer_and_keeps_the_clock(
    hello_8k: np.ndarray, hello_16k: np.ndarray, signals: SimpleNamespace
) -> None:
    analyzer = SileroVADAnalyzer(sample_rate=8000)
    analyzer.analyze(signals.to_pcm(hello_8k[:8000]))
    assert analyzer.state is VADState.SPEAKING

    analyzer.set_sample_rate(16000)
    assert analyzer.state is VADState.QUIET
    assert analyzer.stream_time == pytest.approx(1.0)
    transitions = analyzer.analyze(signals.to_pcm(hello_16k))
    assert transitions[0].state is VADState.SPEAKING
    assert transitions[0].speech_start_time == pytest.approx(1.0, abs=0.1)


def test_the_model_state_is_reset_after_long_quiet_and_never_during_speech(
    hello_8k: np.ndarray, signals: SimpleNamespace
) -> None:
    """Pipecat reset Silero every 5 s of wall clock, mid-word if need be. Here the recurrent
    state is cleared only once QUIET has lasted MODEL_RESET_QUIET_SECS."""
    analyzer = SileroVADAnalyzer(sample_rate=8000)
    long_speech = np.concatenate([hello_8k] * 4)  # 8.4 s, longer than the reset period
    pcm = signals.to_pcm(long_speech, signals.silence(MODEL_RESET_QUIET_SECS + 2.0, 8000))
    cleared_in: list[VADState] = []
    quiet_secs_at_clear: list[float] = []
    quiet_since: float | None = None
    analyzer.feed(pcm)
    while analyzer.pending_windows():
        window = analyzer.take_window()
        transition = analyzer.apply_confidence(analyzer.voice_confidence(window), window)
        if transition is not None and transition.state is VADState.QUIET:
            quiet_since = transition.stream_time - analyzer.window_secs
        if not analyzer._model_state.any():
            cleared_in.append(analyzer.state)
            assert quiet_since is not None
            quiet_secs_at_clear.append(analyzer.stream_time - quiet_since)

    assert cleared_in == [VADState.QUIET]
    assert quiet_secs_at_clear[0] == pytest.approx(MODEL_RESET_QUIET_SECS, abs=0.04)


# -- many calls on one model --------------------------------------------------------------------


def _call_audio(index: int, signals: SimpleNamespace) -> tuple[int, bytes]:
    """A distinct stream per call: rate, lead-in, words and noise all vary with the index, so
    mixing two calls' state up would change some decision."""
    rate = 16000 if index % 5 == 0 else 8000
    word = "hello_16k.wav" if rate == 16000 else ("hello_8k.wav" if index % 3 == 0 else "yes_8k.wav")
    speech = signals.load_wav(word)[1][: round(1.2 * rate)]
    lead = signals.silence(0.01 * index, rate)
    body = np.concatenate([lead, speech, signals.silence(1.2, rate)])
    noise = signals.white_noise(len(body) / rate, rate, -60.0, seed=index)
    return rate, signals.to_pcm(body + noise[: len(body)])


def _decisions_alone(rate: int, pcm: bytes, signals: SimpleNamespace) -> tuple[list[float], list[VADTransition]]:
    """The reference: one analyzer with a model of its own, fed the whole stream."""
    analyzer = SileroVADAnalyzer(sample_rate=rate, model=SileroModel())
    _, confidences, transitions = signals.run_windows(analyzer, pcm)
    return confidences, transitions


def _chunks(rate: int, pcm: bytes, tick: int) -> bytes:
    size = 2 * round(TICK_SECS * rate)
    return pcm[tick * size : (tick + 1) * size]


def _ticks(streams: list[tuple[int, bytes]]) -> int:
    return max(len(pcm) // (2 * round(TICK_SECS * rate)) + 1 for rate, pcm in streams)


def _interleaved_analyze(streams: list[tuple[int, bytes]]) -> list[list[VADTransition]]:
    """All calls on the shared model, fed 20 ms at a time in round-robin, via analyze()."""
    analyzers = [SileroVADAnalyzer(sample_rate=rate) for rate, _ in streams]
    found: list[list[VADTransition]] = [[] for _ in streams]
    for tick in range(_ticks(streams)):
        for index, (rate, pcm) in enumerate(streams):
            found[index] += analyzers[index].analyze(_chunks(rate, pcm, tick))
    return found


def _interleaved_batched(
    streams: list[tuple[int, bytes]],
) -> tuple[list[list[float]], list[list[VADTransition]]]:
    """All calls on the shared model, one batch_confidences() per round of ready windows."""
    analyzers = [SileroVADAnalyzer(sample_rate=rate) for rate, _ in streams]
    confidences: list[list[float]] = [[] for _ in streams]
    found: list[list[VADTransition]] = [[] for _ in streams]
    for tick in range(_ticks(streams)):
        for analyzer, (rate, pcm) in zip(analyzers, streams, strict=True):
            analyzer.feed(_chunks(rate, pcm, tick))
        while ready := [i for i, a in enumerate(analyzers) if a.pending_windows()]:
            windows = [analyzers[i].take_window() for i in ready]
            batch = batch_confidences([analyzers[i] for i in ready], windows)
            for i, window, confidence in zip(ready, windows, batch, strict=True):
                confidences[i].append(confidence)
                if (transition := analyzers[i].apply_confidence(confidence, window)) is not None:
                    found[i].append(transition)
    return confidences, found


@pytest.mark.slow  # builds 50 ONNX sessions for the reference (~1.5 s)
def test_fifty_calls_sharing_one_model_decide_exactly_like_fifty_calls_with_their_own(
    signals: SimpleNamespace,
) -> None:
    streams = [_call_audio(index, signals) for index in range(CALLS)]
    alone = [_decisions_alone(rate, pcm, signals) for rate, pcm in streams]
    shared = _interleaved_analyze(streams)
    batched_confidences, batched = _interleaved_batched(streams)

    for index, (confidences, transitions) in enumerate(alone):
        assert [t.state for t in transitions][:2] == [VADState.SPEAKING, VADState.QUIET], index
        assert shared[index] == transitions, index
        assert batched[index] == transitions, index
        assert len(batched_confidences[index]) == len(confidences)
        assert np.max(np.abs(np.subtract(batched_confidences[index], confidences))) < 1e-5, index


def test_batch_confidences_rejects_an_analyzer_twice_and_mismatched_lengths() -> None:
    analyzer = SileroVADAnalyzer(sample_rate=8000)
    window = np.zeros(256, np.float32)
    with pytest.raises(ValueError, match="twice"):
        batch_confidences([analyzer, analyzer], [window, window])
    with pytest.raises(ValueError, match="1 analyzers but 2 windows"):
        batch_confidences([analyzer], [window, window])


def test_infer_rejects_a_window_of_the_wrong_shape_for_the_rate() -> None:
    with pytest.raises(ValueError, match=r"\[N, 576\]"):
        SileroModel.shared().infer(np.zeros((1, 288), np.float32), np.zeros((2, 1, 128), np.float32), 16000)
