"""Smart Turn's features and model against the reference vectors (services.md §7.3)."""

from __future__ import annotations

import hashlib
import importlib.resources

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonewire.audio.turn.smart_turn.features import WINDOW_SAMPLES, fit_window, smart_turn_features
from phonewire.audio.turn.smart_turn.model import MODEL_FILE, MODEL_SHA256, SmartTurnModel
from phonewire.audio.turn.smart_turn.runner import prepare

SR = 16000


def _sine() -> np.ndarray:
    t = np.arange(2 * SR) / SR
    return (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)


def _noise() -> np.ndarray:
    return np.random.default_rng(1).normal(0, 0.1, 3 * SR).astype(np.float32)


# input, feature mean, min, max, p(complete) - the table in services.md §7.3
VECTORS = [
    ("zeros", lambda: np.zeros(SR, np.float32), -1.5, -1.5, -1.5, 0.9870),
    ("sine", _sine, -0.157657, -0.1841, 1.8159, 0.9885),
    ("noise", _noise, 0.145254, -0.5207, 1.4793, 0.7652),
]


@pytest.mark.parametrize(("name", "make", "mean", "low", "high", "p"), VECTORS, ids=[v[0] for v in VECTORS])
def test_features_and_probability_match_the_reference_vectors(name, make, mean, low, high, p) -> None:  # type: ignore[no-untyped-def]
    features = smart_turn_features(make())
    assert features.shape == (80, 800) and features.dtype == np.float32
    assert features.mean() == pytest.approx(mean, abs=2e-6)
    assert features.min() == pytest.approx(low, abs=1e-4)
    assert features.max() == pytest.approx(high, abs=1e-4)
    assert SmartTurnModel.shared().predict(features[None])[0] == pytest.approx(p, abs=1e-4)


def test_all_zero_audio_is_exactly_minus_one_and_a_half_everywhere() -> None:
    assert np.all(smart_turn_features(np.zeros(5 * SR, np.float32)) == np.float32(-1.5))


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=WINDOW_SAMPLES + 5000))
def test_fit_window_keeps_the_end_and_pads_on_the_left(n: int) -> None:
    x = np.arange(1, n + 1, dtype=np.float32)
    out = fit_window(x)
    assert out.shape == (WINDOW_SAMPLES,)
    if n:
        assert out[-1] == n  # the speech ends where the window ends
    if n < WINDOW_SAMPLES:
        assert not out[: WINDOW_SAMPLES - n].any()


def test_8khz_audio_is_resampled_to_16khz_before_the_features() -> None:
    t = np.arange(8000) / 8000
    pcm8 = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    samples = prepare(pcm8, 8000)
    assert abs(len(samples) - SR) <= 64  # one second at 16 kHz, not 8000 samples read as 16 kHz
    spectrum = np.abs(np.fft.rfft(samples[1000:-1000]))
    peak_hz = np.argmax(spectrum) * SR / len(samples[1000:-1000])
    assert peak_hz == pytest.approx(440, abs=5)  # pitch kept (pipecat#3844 heard it at 880)


def test_the_shipped_model_is_the_vendored_file() -> None:
    data = importlib.resources.files("phonewire.audio.turn.smart_turn").joinpath("data", MODEL_FILE).read_bytes()
    assert hashlib.sha256(data).hexdigest() == MODEL_SHA256
    assert SmartTurnModel.shared() is SmartTurnModel.shared()
