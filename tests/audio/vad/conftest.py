"""Audio for the VAD tests: the committed espeak-ng fixtures plus seeded, generated noise.

Helpers reach the tests through the ``signals`` fixture rather than an import, so they work under
any pytest import mode and never clash with another directory's conftest.

Fixtures start with speech at sample 0 (see tests/fixtures/speech/make_fixtures.sh), so placing one
at a known offset gives the true speech onset to within a few milliseconds.
"""

from __future__ import annotations

import wave
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from phonewire.audio.vad import VADAnalyzer, VADState, VADTransition

SPEECH_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "speech"


def load_wav(name: str) -> tuple[int, np.ndarray]:
    """(sample rate, int16 samples) of a committed mono 16-bit fixture."""
    with wave.open(str(SPEECH_DIR / name), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2), name
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        return wav.getframerate(), samples


def silence(secs: float, rate: int) -> np.ndarray:
    return np.zeros(round(secs * rate), dtype=np.float64)


def white_noise(secs: float, rate: int, dbfs: float, seed: int = 0) -> np.ndarray:
    """Gaussian white noise with the given RMS level (full scale = 32768)."""
    rms = 32768.0 * 10.0 ** (dbfs / 20.0)
    return np.random.default_rng(seed).normal(0.0, rms, round(secs * rate))


def hum(secs: float, rate: int, dbfs: float, freq: float = 120.0) -> np.ndarray:
    """Mains hum (a full-wave-rectified 60 Hz supply shows up at 120 Hz) at an RMS level."""
    t = np.arange(round(secs * rate)) / rate
    return np.sqrt(2.0) * 32768.0 * 10.0 ** (dbfs / 20.0) * np.sin(2 * np.pi * freq * t)


def to_pcm(*parts: np.ndarray) -> bytes:
    """Concatenate float or int sample arrays into s16le bytes (clipped)."""
    joined = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])
    return np.clip(np.round(joined), -32768, 32767).astype("<i2").tobytes()


def run_windows(analyzer: VADAnalyzer, pcm: bytes) -> tuple[list[VADState], list[float], list[VADTransition]]:
    """Drive the analyzer window by window; return the state and confidence after each window and
    the reported transitions. This is exactly what analyze() does, but observable."""
    analyzer.feed(pcm)
    states: list[VADState] = []
    confidences: list[float] = []
    transitions: list[VADTransition] = []
    while analyzer.pending_windows():
        window = analyzer.take_window()
        confidence = analyzer.voice_confidence(window)
        transition = analyzer.apply_confidence(confidence, window)
        if transition is not None:
            transitions.append(transition)
        states.append(analyzer.state)
        confidences.append(confidence)
    return states, confidences, transitions


def collapse(states: list[VADState]) -> list[VADState]:
    """The sequence of distinct states visited, without repeats: [QUIET, STARTING, SPEAKING, ...]."""
    return [s for i, s in enumerate(states) if i == 0 or s is not states[i - 1]]


@pytest.fixture(scope="session")
def hello_8k() -> np.ndarray:
    rate, samples = load_wav("hello_8k.wav")
    assert rate == 8000
    return samples


@pytest.fixture(scope="session")
def hello_16k() -> np.ndarray:
    rate, samples = load_wav("hello_16k.wav")
    assert rate == 16000
    return samples


@pytest.fixture(scope="session")
def yes_8k() -> np.ndarray:
    rate, samples = load_wav("yes_8k.wav")
    assert rate == 8000
    return samples


@pytest.fixture(scope="session")
def signals() -> SimpleNamespace:
    """The helper functions above, for tests: ``signals.silence(0.5, 8000)`` and so on."""
    return SimpleNamespace(
        load_wav=load_wav,
        silence=silence,
        white_noise=white_noise,
        hum=hum,
        to_pcm=to_pcm,
        run_windows=run_windows,
        collapse=collapse,
    )
