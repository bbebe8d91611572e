"""G.711 codecs: bit-exact with audioop, correct on hand-checked values, and faithful round trips."""

from __future__ import annotations

import bisect
import sys
import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonewire.audio import (
    ALAW_SILENCE,
    ULAW_SILENCE,
    alaw_to_pcm,
    pcm_to_alaw,
    pcm_to_ulaw,
    ulaw_to_pcm,
)

ALL_SAMPLES = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_CODES = bytes(range(256))

Transform = Callable[[bytes], bytes]


def _audioop() -> ModuleType:
    """The reference implementation: stdlib audioop before 3.13, audioop-lts (if installed) after."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if sys.version_info < (3, 13):
            import audioop  # stdlib here, so the bit-exactness tests can never be skipped on 3.11/3.12

            return audioop
        return pytest.importorskip("audioop")


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.int32)


def test_mu_law_encoding_is_bit_exact_with_audioop_for_every_int16_sample() -> None:
    assert pcm_to_ulaw(ALL_SAMPLES) == _audioop().lin2ulaw(ALL_SAMPLES, 2)


def test_mu_law_decoding_is_bit_exact_with_audioop_for_every_code() -> None:
    assert ulaw_to_pcm(ALL_CODES) == _audioop().ulaw2lin(ALL_CODES, 2)


def test_a_law_encoding_is_bit_exact_with_audioop_for_every_int16_sample() -> None:
    assert pcm_to_alaw(ALL_SAMPLES) == _audioop().lin2alaw(ALL_SAMPLES, 2)


def test_a_law_decoding_is_bit_exact_with_audioop_for_every_code() -> None:
    assert alaw_to_pcm(ALL_CODES) == _audioop().alaw2lin(ALL_CODES, 2)


@pytest.mark.parametrize(
    ("sample", "code"),
    [(0, 0xFF), (-1, 0x7E), (32767, 0x80), (-32768, 0x00), (1000, 0xCE), (-1000, 0x4E), (32124, 0x80)],
)
def test_mu_law_encodes_hand_checked_samples_to_their_reference_codes(sample: int, code: int) -> None:
    assert pcm_to_ulaw(np.array([sample], dtype="<i2").tobytes()) == bytes([code])


@pytest.mark.parametrize(("code", "sample"), [(0xFF, 0), (0x7F, 0), (0x80, 32124), (0x00, -32124), (0xCE, 988)])
def test_mu_law_decodes_hand_checked_codes_to_their_reference_levels(code: int, sample: int) -> None:
    assert _samples(ulaw_to_pcm(bytes([code]))).tolist() == [sample]


@pytest.mark.parametrize(
    ("sample", "code"),
    [(0, 0xD5), (-1, 0x55), (32767, 0xAA), (-32768, 0x2A), (1000, 0xFA), (-1000, 0x7A)],
)
def test_a_law_encodes_hand_checked_samples_to_their_reference_codes(sample: int, code: int) -> None:
    assert pcm_to_alaw(np.array([sample], dtype="<i2").tobytes()) == bytes([code])


@pytest.mark.parametrize(("code", "sample"), [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xFA, 1008)])
def test_a_law_decodes_hand_checked_codes_to_their_reference_levels(code: int, sample: int) -> None:
    assert _samples(alaw_to_pcm(bytes([code]))).tolist() == [sample]


def test_silence_constants_are_what_digital_silence_encodes_to() -> None:
    zeros = bytes(320)
    assert pcm_to_ulaw(zeros) == bytes([ULAW_SILENCE]) * 160
    assert pcm_to_alaw(zeros) == bytes([ALAW_SILENCE]) * 160
    assert _samples(ulaw_to_pcm(bytes([ULAW_SILENCE]))).tolist() == [0]
    assert abs(_samples(alaw_to_pcm(bytes([ALAW_SILENCE])))[0]) <= 8


@pytest.mark.parametrize("encode", [pcm_to_ulaw, pcm_to_alaw])
def test_encoders_ignore_an_odd_trailing_byte(encode: Transform) -> None:
    pcm = np.array([100, -200, 3000], dtype="<i2").tobytes()
    assert encode(pcm + b"\x7f") == encode(pcm)
    assert encode(b"\x01") == b""


@pytest.mark.parametrize("codec", [(pcm_to_ulaw, ulaw_to_pcm), (pcm_to_alaw, alaw_to_pcm)])
def test_codecs_produce_one_byte_per_sample_and_two_bytes_per_code(codec: tuple[Transform, Transform]) -> None:
    encode, decode = codec
    assert len(encode(bytes(320))) == 160
    assert len(decode(bytes(160))) == 320
    assert encode(b"") == b"" and decode(b"") == b""


@pytest.mark.parametrize("codec", [(pcm_to_ulaw, ulaw_to_pcm), (pcm_to_alaw, alaw_to_pcm)])
def test_quantisation_is_monotonic_across_the_whole_int16_range(codec: tuple[Transform, Transform]) -> None:
    encode, decode = codec
    assert np.all(np.diff(_samples(decode(encode(ALL_SAMPLES)))) >= 0)


def test_every_mu_law_code_survives_a_round_trip_except_negative_zero() -> None:
    round_tripped = pcm_to_ulaw(ulaw_to_pcm(ALL_CODES))
    assert [c for c in range(256) if round_tripped[c] != c] == [0x7F]  # -0 decodes to 0 and re-encodes as +0


def test_every_a_law_code_survives_a_round_trip() -> None:
    assert pcm_to_alaw(alaw_to_pcm(ALL_CODES)) == ALL_CODES


def _within_one_step(original: np.ndarray, decoded: np.ndarray, levels: list[int]) -> bool:
    """True when each decoded value is within one quantisation step (gap to its neighbour level)."""
    for x, y in zip(original.tolist(), decoded.tolist(), strict=True):
        i = levels.index(y)
        step = max(levels[min(i + 1, len(levels) - 1)] - y, y - levels[max(i - 1, 0)])
        if abs(y - x) > step:
            return False
    return True


ULAW_LEVELS = sorted(set(_samples(ulaw_to_pcm(ALL_CODES)).tolist()))
ALAW_LEVELS = sorted(set(_samples(alaw_to_pcm(ALL_CODES)).tolist()))


@given(st.binary(max_size=400))
def test_mu_law_round_trip_of_arbitrary_pcm_is_within_one_quantisation_step(pcm: bytes) -> None:
    original = _samples(pcm[: len(pcm) & ~1])
    assert _within_one_step(original, _samples(ulaw_to_pcm(pcm_to_ulaw(pcm))), ULAW_LEVELS)


@given(st.binary(max_size=400))
def test_a_law_round_trip_of_arbitrary_pcm_is_within_one_quantisation_step(pcm: bytes) -> None:
    original = _samples(pcm[: len(pcm) & ~1])
    assert _within_one_step(original, _samples(alaw_to_pcm(pcm_to_alaw(pcm))), ALAW_LEVELS)


@given(st.binary(max_size=400))
def test_decoding_then_encoding_arbitrary_codes_is_stable(data: bytes) -> None:
    assert pcm_to_alaw(alaw_to_pcm(data)) == data
    assert pcm_to_ulaw(ulaw_to_pcm(data)) == data.replace(b"\x7f", b"\xff")


def test_decoded_levels_are_symmetric_around_zero() -> None:
    assert ULAW_LEVELS == sorted({-v for v in ULAW_LEVELS})
    assert ALAW_LEVELS == sorted({-v for v in ALAW_LEVELS})
    assert bisect.bisect_left(ULAW_LEVELS, 0) == 127  # 127 negative levels, zero, 127 positive
