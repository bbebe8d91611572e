"""Smart Turn v3's input features: Whisper-style log-mel of the last 8 s at 16 kHz (numpy only).

The recipe (services.md §7.3) is the Whisper feature extractor with ``do_normalize=True``:
fit to 8 s (keep the end, pad zeros on the left so speech ends at the window's end), normalise
the waveform over the whole padded buffer, power STFT (n_fft 400, hop 160, periodic Hann,
reflect-centred), 80 Slaney mel filters 0–8 kHz, log10, drop the last frame, clamp the dynamic
range to 8 decades, scale ``(L + 4) / 4``.

Pure functions without state: they run on a worker thread (about 15 ms for 8 s of audio), never
on the event loop. The mel filterbank and window are built once at import.
"""

from __future__ import annotations

import numpy as np

__all__ = ["HOP", "N_FFT", "N_MELS", "SAMPLE_RATE", "WINDOW_SAMPLES", "fit_window", "smart_turn_features"]

SAMPLE_RATE = 16000
"""The only rate the model understands; other rates are resampled first (pipecat#3844)."""
WINDOW_SAMPLES = 8 * SAMPLE_RATE
N_FFT = 400
HOP = 160
N_MELS = 80
_FRAMES = WINDOW_SAMPLES // HOP  # 800 after the last of the 801 frames is dropped


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney scale: linear (3 f / 200) below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) * (27.0 / np.log(6.4))
    return np.where(f < 1000.0, 3.0 * f / 200.0, log_part)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m < 15.0, 200.0 * m / 3.0, 1000.0 * np.exp((m - 15.0) * np.log(6.4) / 27.0))


def _mel_filters() -> np.ndarray:
    """(80, 201) triangular filters on 82 mel-spaced edges, Slaney area-normalised."""
    bins = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(SAMPLE_RATE / 2)), N_MELS + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return filters * (2.0 / (edges[2:] - edges[:-2]))[:, None]


_FILTERS = _mel_filters()
_HANN = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic


def fit_window(samples: np.ndarray) -> np.ndarray:
    """Exactly 8 s: the last 128,000 samples, or zeros on the left of a shorter input."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    if samples.size >= WINDOW_SAMPLES:
        return samples[-WINDOW_SAMPLES:].copy()
    out = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
    if samples.size:
        out[-samples.size :] = samples
    return out


def smart_turn_features(samples: np.ndarray) -> np.ndarray:
    """float32 [80, 800] features of mono float32 16 kHz audio in [-1, 1] (any length).

    Add the batch axis (``features[None]``) before running the model.
    """
    x = fit_window(samples)
    x = (x - x.mean()) / np.sqrt(x.var() + np.float32(1e-7))  # float32, zeros included
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]  # (801, 400), a view
    power = np.abs(np.fft.rfft(frames * _HANN, axis=1)) ** 2  # (801, 201)
    mel = _FILTERS @ power.T  # (80, 801)
    log = np.log10(np.maximum(mel, 1e-10))[:, :_FRAMES]
    log = np.maximum(log, log.max() - 8.0)
    return ((log + 4.0) / 4.0).astype(np.float32)
