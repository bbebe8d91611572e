"""Streaming resampling: pitch preserved, steady per-packet output, tiny latency, nothing lost."""

from __future__ import annotations

import numpy as np
import pytest

from phonewire.audio import RateConverter, StreamResampler, dominant_frequency, silence, tone

RATE_PAIRS = [(8000, 16000), (16000, 8000), (24000, 8000), (8000, 24000), (22050, 8000), (48000, 8000)]


def _packets(pcm: bytes, rate: int, ms: int = 20) -> list[bytes]:
    size = 2 * rate * ms // 1000
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def _stream(resampler: StreamResampler, pcm: bytes) -> tuple[list[bytes], bytes]:
    """Feed ``pcm`` in 20 ms packets; return each packet's output and the flushed tail."""
    outputs = [resampler.process(packet) for packet in _packets(pcm, resampler.in_rate)]
    return outputs, resampler.flush()


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def _ideal_resample(pcm: bytes, in_rate: int, out_rate: int) -> np.ndarray:
    """Band-limited reference by zero-padding/truncating the spectrum (no delay by construction)."""
    x = _samples(pcm)
    n_out = round(len(x) * out_rate / in_rate)
    spectrum = np.fft.rfft(x)
    padded = np.zeros(n_out // 2 + 1, dtype=complex)
    keep = min(len(spectrum), len(padded))
    padded[:keep] = spectrum[:keep]
    return np.fft.irfft(padded, n_out) * n_out / len(x)


def _lag(output: np.ndarray, reference: np.ndarray, max_lag: int) -> int:
    """Lag (in samples) at which ``output`` best matches ``reference``; positive means output is late."""
    core = slice(max_lag, min(len(output), len(reference)) - max_lag)
    scores = {
        lag: float(np.dot(output[core.start + lag : core.stop + lag], reference[core]))
        for lag in range(-max_lag, max_lag + 1)
    }
    return max(scores, key=scores.__getitem__)


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_a_440_hz_tone_keeps_its_pitch(in_rate: int, out_rate: int) -> None:
    outputs, tail = _stream(StreamResampler(in_rate, out_rate), tone(440, 1.0, in_rate))
    assert dominant_frequency(b"".join(outputs) + tail, out_rate) == pytest.approx(440, abs=5)


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_every_packet_after_the_first_yields_the_ideal_number_of_samples(in_rate: int, out_rate: int) -> None:
    outputs, _ = _stream(StreamResampler(in_rate, out_rate), tone(440, 1.0, in_rate))
    ideal = out_rate // 50
    assert all(outputs), "no packet may come back empty"
    assert all(abs(len(out) // 2 - ideal) <= 2 for out in outputs[1:])


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_total_output_after_flush_is_the_input_length_times_the_ratio(in_rate: int, out_rate: int) -> None:
    pcm = tone(440, 0.73, in_rate)
    outputs, tail = _stream(StreamResampler(in_rate, out_rate), pcm)
    total = sum(len(out) for out in outputs) + len(tail)
    assert abs(total // 2 - round(len(pcm) // 2 * out_rate / in_rate)) <= 2


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_output_is_time_aligned_and_held_back_by_only_a_few_ms(in_rate: int, out_rate: int) -> None:
    noise = np.random.default_rng(7).normal(0, 3000, in_rate).astype("<i2").tobytes()
    resampler = StreamResampler(in_rate, out_rate)
    streamed = b"".join(resampler.process(packet) for packet in _packets(noise, in_rate))
    reference = _ideal_resample(noise, in_rate, out_rate)
    lag_ms = 1000 * _lag(_samples(streamed), reference, max_lag=out_rate // 100) / out_rate
    held_ms = 1000 * (len(reference) - len(streamed) // 2) / out_rate
    assert abs(lag_ms) <= 1.0
    assert 0 <= held_ms <= 3.0


def test_streamed_output_matches_the_band_limited_ideal_closely() -> None:
    pcm = tone(440, 1.0, 8000) + tone(1800, 1.0, 8000)
    outputs, tail = _stream(StreamResampler(8000, 16000), pcm)
    error = _samples(b"".join(outputs) + tail) - _ideal_resample(pcm, 8000, 16000)
    assert np.sqrt(np.mean(error[400:-400] ** 2)) < 0.003 * 0.3 * 32767  # error 50 dB below the tone


def test_flush_returns_the_tail_held_in_the_filter_and_starts_a_fresh_stream() -> None:
    resampler = StreamResampler(8000, 16000)
    pcm = tone(440, 0.1, 8000)
    first = resampler.process(pcm)
    tail = resampler.flush()
    assert len(first) // 2 + len(tail) // 2 == 1600
    assert 0 < len(tail) // 2 <= 16000 * 3 // 1000
    assert resampler.flush() == b""
    assert resampler.process(pcm) == first


def test_reset_drops_held_audio_so_the_next_utterance_starts_clean() -> None:
    resampler = StreamResampler(16000, 8000)
    resampler.process(tone(1000, 0.05, 16000))
    resampler.reset()
    assert resampler.flush() == b""
    pcm = tone(440, 0.05, 16000)
    assert resampler.process(pcm) == StreamResampler(16000, 8000).process(pcm)


def test_digital_silence_stays_digital_silence() -> None:
    outputs, tail = _stream(StreamResampler(8000, 24000), silence(0.2, 8000))
    assert set(b"".join(outputs) + tail) == {0}


def test_a_full_scale_step_is_clipped_rather_than_wrapping_around() -> None:
    step = silence(0.02, 8000) + np.full(800, 32767, dtype="<i2").tobytes()
    outputs, _ = _stream(StreamResampler(8000, 16000), step)
    after_step = _samples(b"".join(outputs))[400:]
    assert after_step.min() > 0 and after_step.max() == 32767


def test_packets_split_mid_sample_give_the_same_output_as_whole_samples() -> None:
    pcm = tone(440, 0.1, 8000)
    whole = StreamResampler(8000, 16000).process(pcm)
    split = StreamResampler(8000, 16000)
    assert b"".join(split.process(pcm[i : i + 33]) for i in range(0, len(pcm), 33)) == whole


@pytest.mark.parametrize("rate", [8000, 16000, 44100])
def test_equal_rates_are_a_zero_cost_passthrough(rate: int) -> None:
    resampler = StreamResampler(rate, rate)
    pcm = tone(440, 0.02, rate) + b"\x01"
    assert resampler.process(pcm) is pcm
    assert resampler.flush() == b""


@pytest.mark.parametrize(("in_rate", "out_rate"), [(0, 8000), (8000, -1), (8000, 8000 * 300), (8000.0, 16000)])
def test_invalid_rates_are_rejected_up_front(in_rate: int, out_rate: int) -> None:
    with pytest.raises(ValueError):
        StreamResampler(in_rate, out_rate)


def test_rate_converter_handles_an_input_rate_change_without_losing_the_tail() -> None:
    converter = RateConverter(8000)
    first, second = tone(440, 0.5, 16000), tone(1000, 0.5, 24000)
    out_first = b"".join(converter.convert(p, 16000) for p in _packets(first, 16000))
    out_second = b"".join(converter.convert(p, 24000) for p in _packets(second, 24000))
    out_second += converter.flush()
    assert abs((len(out_first) + len(out_second)) // 2 - 8000) <= 2
    assert converter.in_rate == 24000
    assert dominant_frequency(out_first, 8000) == pytest.approx(440, abs=5)
    assert dominant_frequency(out_second[400:], 8000) == pytest.approx(1000, abs=5)


def test_rate_converter_passes_matching_rates_through_untouched() -> None:
    converter = RateConverter(16000)
    pcm = tone(440, 0.02, 16000)
    assert converter.convert(pcm, 16000) is pcm
    assert converter.flush() == b""


def test_rate_converter_flush_and_reset_mirror_the_stream_resampler() -> None:
    converter = RateConverter(16000)
    assert converter.flush() == b"" and converter.in_rate is None
    converter.reset()
    first = converter.convert(tone(440, 0.1, 8000), 8000)
    assert len(first) // 2 + len(converter.flush()) // 2 == 1600
    converter.convert(tone(440, 0.1, 8000), 8000)
    converter.reset()
    assert converter.flush() == b""


def test_rate_converter_rejects_a_bad_rate_without_disturbing_the_current_stream() -> None:
    converter = RateConverter(8000)
    converter.convert(tone(440, 0.1, 16000), 16000)
    with pytest.raises(ValueError):
        converter.convert(b"\x00\x00", 0)
    assert converter.in_rate == 16000 and converter.flush() != b""
