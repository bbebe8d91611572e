"""Signal helpers: levels and pitch that tests and reports can rely on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from phonewire.audio import dominant_frequency, rms_dbfs, silence, tone


def test_a_full_scale_square_wave_is_0_dbfs_and_a_full_scale_sine_about_minus_3() -> None:
    square = np.tile(np.array([32767, -32767], dtype="<i2"), 400).tobytes()
    assert rms_dbfs(square) == pytest.approx(0.0, abs=0.01)
    assert rms_dbfs(tone(1000, 1.0, 8000, amplitude=1.0)) == pytest.approx(-3.01, abs=0.01)


def test_halving_the_amplitude_lowers_the_level_by_6_db() -> None:
    loud, quiet = tone(440, 0.5, 16000, amplitude=0.5), tone(440, 0.5, 16000, amplitude=0.25)
    assert rms_dbfs(loud) - rms_dbfs(quiet) == pytest.approx(6.02, abs=0.05)


@pytest.mark.parametrize("pcm", [b"", b"\x00", silence(0.02, 8000)])
def test_silence_and_empty_input_are_minus_infinity_dbfs(pcm: bytes) -> None:
    assert rms_dbfs(pcm) == -math.inf


@pytest.mark.parametrize(("freq", "rate", "duration"), [(440, 8000, 1.0), (1000, 8000, 0.02), (3300, 16000, 0.1)])
def test_the_dominant_frequency_of_a_tone_is_its_frequency(freq: float, rate: int, duration: float) -> None:
    assert dominant_frequency(tone(freq, duration, rate), rate) == pytest.approx(freq, abs=2)


def test_the_louder_of_two_tones_dominates() -> None:
    a = np.frombuffer(tone(440, 0.5, 8000, amplitude=0.1), dtype="<i2")
    b = np.frombuffer(tone(1200, 0.5, 8000, amplitude=0.4), dtype="<i2")
    assert dominant_frequency((a + b).astype("<i2").tobytes(), 8000) == pytest.approx(1200, abs=2)


def test_a_dc_offset_does_not_hide_the_tone() -> None:
    shifted = np.frombuffer(tone(700, 0.2, 8000, amplitude=0.2), dtype="<i2") + 10000
    assert dominant_frequency(shifted.astype("<i2").tobytes(), 8000) == pytest.approx(700, abs=2)


@pytest.mark.parametrize("pcm", [b"", b"\x01", silence(0.1, 8000)])
def test_empty_or_silent_input_has_no_dominant_frequency(pcm: bytes) -> None:
    assert dominant_frequency(pcm, 8000) == 0.0


def test_tone_has_the_requested_length_amplitude_and_zero_starting_phase() -> None:
    samples = np.frombuffer(tone(250, 0.02, 8000, amplitude=0.5), dtype="<i2")
    assert len(samples) == 160
    assert samples[0] == 0 and samples[1] > 0
    assert samples.max() == round(0.5 * 32767)


def test_silence_is_zeroed_s16le_of_the_requested_length() -> None:
    assert silence(0.02, 16000) == bytes(640)
    assert silence(0.0, 8000) == b""
