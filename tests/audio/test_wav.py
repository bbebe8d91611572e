"""WAV writing and reading: standard headers, G.711 payloads, tolerant chunk parsing."""

from __future__ import annotations

import io
import struct
import wave
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonewire.audio import (
    alaw_to_pcm,
    pcm_to_alaw,
    pcm_to_ulaw,
    pcm_to_wav,
    read_wav,
    tone,
    ulaw_to_pcm,
    wav_header,
    write_wav,
)


def _chunk(chunk_id: bytes, body: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) & 1)


def _riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _fmt(tag: int, channels: int, rate: int, bits: int, extra: bytes = b"") -> bytes:
    align = channels * bits // 8
    return _chunk(b"fmt ", struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits) + extra)


def test_pcm_to_wav_writes_a_standard_header_the_stdlib_reads() -> None:
    pcm = tone(440, 0.1, 16000)
    with wave.open(io.BytesIO(pcm_to_wav(pcm, 16000)), "rb") as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, 16000)
        assert reader.readframes(reader.getnframes()) == pcm


def test_the_header_is_44_bytes_with_consistent_sizes() -> None:
    header = wav_header(1000, 8000, channels=2)
    assert len(header) == 44
    assert struct.unpack_from("<4sI4s4sI", header) == (b"RIFF", 36 + 1000, b"WAVE", b"fmt ", 16)
    assert struct.unpack_from("<HHIIHH", header, 20) == (1, 2, 8000, 32000, 4, 16)
    assert header[36:40] == b"data" and struct.unpack_from("<I", header, 40) == (1000,)


@pytest.mark.parametrize(("tag", "encode"), [(7, pcm_to_ulaw), (6, pcm_to_alaw)])
def test_a_g711_header_on_an_encoded_payload_reads_back_as_decoded_pcm(
    tag: int, encode: Callable[[bytes], bytes]
) -> None:
    payload = encode(tone(440, 0.1, 8000))
    header = wav_header(len(payload), 8000, bits_per_sample=8, format_tag=tag)
    assert struct.unpack_from("<HHIIHH", header, 20) == (tag, 1, 8000, 8000, 1, 8)
    decode = ulaw_to_pcm if tag == 7 else alaw_to_pcm
    assert read_wav(header + payload) == (decode(payload), 8000, 1)


def test_pcm_to_wav_truncates_to_whole_sample_frames() -> None:
    assert pcm_to_wav(b"\x01\x02\x03", 8000)[44:] == b"\x01\x02"
    assert pcm_to_wav(b"\x01\x02\x03\x04\x05\x06", 8000, channels=2)[44:] == b"\x01\x02\x03\x04"


def test_write_wav_then_read_wav_round_trips_through_a_file(tmp_path: Path) -> None:
    pcm = tone(300, 0.05, 24000)
    path = tmp_path / "out.wav"
    write_wav(path, pcm, 24000)
    assert read_wav(path) == (pcm, 24000, 1)
    assert read_wav(str(path)) == (pcm, 24000, 1)


@given(
    pcm=st.binary(max_size=500),
    rate=st.sampled_from([8000, 16000, 22050, 44100]),
    channels=st.integers(min_value=1, max_value=2),
)
def test_any_pcm_round_trips_through_wav_bytes(pcm: bytes, rate: int, channels: int) -> None:
    usable = len(pcm) - len(pcm) % (2 * channels)
    assert read_wav(pcm_to_wav(pcm, rate, channels)) == (pcm[:usable], rate, channels)


def test_unknown_chunks_and_an_extended_fmt_are_skipped() -> None:
    pcm = tone(440, 0.01, 8000)
    blob = _riff(
        _chunk(b"LIST", b"INFOxyz"),
        _fmt(1, 1, 8000, 16, extra=b"\x00\x00"),
        _chunk(b"fact", b"1234"),
        _chunk(b"data", pcm),
    )
    assert read_wav(blob) == (pcm, 8000, 1)


def test_wave_format_extensible_pcm_is_read_by_its_sub_format() -> None:
    pcm = tone(440, 0.01, 16000)
    sub_format = struct.pack("<HHI", 22, 16, 0x4) + struct.pack("<H", 1) + bytes(14)
    assert read_wav(_riff(_fmt(0xFFFE, 1, 16000, 16, extra=sub_format), _chunk(b"data", pcm))) == (pcm, 16000, 1)


def test_a_data_size_that_was_never_finalised_reads_to_the_end_of_the_file() -> None:
    pcm = tone(440, 0.01, 8000)
    blob = wav_header(0xFFFFFFFF - 36, 8000) + pcm
    assert read_wav(blob) == (pcm, 8000, 1)


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"RIFX\x00\x00\x00\x00WAVE",
        _riff(_chunk(b"data", b"\x00\x00")),
        _riff(_fmt(1, 1, 8000, 16)),
        _riff(_fmt(1, 1, 8000, 8), _chunk(b"data", b"\x80\x80")),
        _riff(_fmt(3, 1, 8000, 32), _chunk(b"data", bytes(8))),
        _riff(_chunk(b"fmt ", b"\x01\x00"), _chunk(b"data", bytes(2))),
    ],
    ids=["empty", "not-riff", "data-before-fmt", "no-data", "8-bit-pcm", "float", "truncated-fmt"],
)
def test_unreadable_or_unsupported_files_raise_value_error(blob: bytes) -> None:
    with pytest.raises(ValueError):
        read_wav(blob)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_data_bytes": -1, "sample_rate": 8000},
        {"num_data_bytes": 0, "sample_rate": 0},
        {"num_data_bytes": 2**32, "sample_rate": 8000},
    ],
)
def test_impossible_headers_are_rejected(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        wav_header(**kwargs)
