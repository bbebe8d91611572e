"""Minimal RIFF/WAVE writing and reading for call recordings, fixtures and debugging dumps.

The stdlib ``wave`` module cannot read μ-law/A-law WAVs, which is exactly what telephony tools
export, so this small parser handles 16-bit PCM and 8-bit G.711 and skips every other chunk
(LIST, fact, ...). Headers are always the canonical 44 bytes so a header can be put in front of
raw μ-law payloads without re-encoding them.
"""

from __future__ import annotations

import os
import struct

from phonewire.audio.g711 import alaw_to_pcm, ulaw_to_pcm

__all__ = [
    "WAVE_FORMAT_ALAW",
    "WAVE_FORMAT_MULAW",
    "WAVE_FORMAT_PCM",
    "pcm_to_wav",
    "read_wav",
    "wav_header",
    "write_wav",
]

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_ALAW = 6
WAVE_FORMAT_MULAW = 7
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE

_HEADER_SIZE = 44
_MAX_DATA_BYTES = 0xFFFFFFFF - (_HEADER_SIZE - 8)  # RIFF sizes are 32-bit
_FMT = struct.Struct("<HHIIHH")  # format tag, channels, rate, byte rate, block align, bits per sample


def wav_header(
    num_data_bytes: int,
    sample_rate: int,
    channels: int = 1,
    bits_per_sample: int = 16,
    format_tag: int = WAVE_FORMAT_PCM,
) -> bytes:
    """Build the 44-byte RIFF/WAVE header for ``num_data_bytes`` of audio that follow it.

    ``format_tag`` is 1 for PCM, 7 for μ-law and 6 for A-law (use ``bits_per_sample=8`` for the
    latter two).
    """
    if not 0 <= num_data_bytes <= _MAX_DATA_BYTES:
        raise ValueError(f"num_data_bytes must be in 0..{_MAX_DATA_BYTES}, got {num_data_bytes}")
    if sample_rate <= 0 or channels <= 0 or bits_per_sample <= 0 or bits_per_sample % 8:
        raise ValueError("sample_rate and channels must be positive, bits_per_sample a multiple of 8")
    block_align = channels * bits_per_sample // 8
    fmt = _FMT.pack(format_tag, channels, sample_rate, sample_rate * block_align, block_align, bits_per_sample)
    return (
        b"RIFF"
        + struct.pack("<I", _HEADER_SIZE - 8 + num_data_bytes)
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", num_data_bytes)
    )


def pcm_to_wav(pcm: bytes, sample_rate: int, channels: int = 1) -> bytes:
    """Wrap s16le PCM in a complete WAV file, dropping any incomplete trailing sample frame."""
    if channels <= 0:
        raise ValueError(f"channels must be positive, got {channels}")
    usable = len(pcm) - len(pcm) % (2 * channels)
    return wav_header(usable, sample_rate, channels) + bytes(pcm[:usable])


def write_wav(path: str | os.PathLike[str], pcm: bytes, sample_rate: int, channels: int = 1) -> None:
    """Write s16le PCM to ``path`` as a 16-bit PCM WAV file."""
    with open(path, "wb") as f:
        f.write(pcm_to_wav(pcm, sample_rate, channels))


def read_wav(path_or_bytes: str | os.PathLike[str] | bytes) -> tuple[bytes, int, int]:
    """Read a WAV file (path or its bytes) into ``(s16le pcm, sample_rate, channels)``.

    Accepts 16-bit PCM and 8-bit μ-law/A-law (decoded to 16-bit), including the
    WAVE_FORMAT_EXTENSIBLE variants. A data chunk that claims more bytes than are present (a
    recording whose header was never finalised) is read up to the end of the file.
    """
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        blob = bytes(path_or_bytes)
    else:
        with open(path_or_bytes, "rb") as f:
            blob = f.read()
    fmt, data = _parse_chunks(blob)
    tag, channels, sample_rate, bits = fmt
    if tag == WAVE_FORMAT_PCM and bits == 16:
        pcm = data
    elif tag == WAVE_FORMAT_MULAW and bits == 8:
        pcm = ulaw_to_pcm(data)
    elif tag == WAVE_FORMAT_ALAW and bits == 8:
        pcm = alaw_to_pcm(data)
    else:
        raise ValueError(f"unsupported WAV encoding: format tag {tag}, {bits} bits per sample")
    frame_bytes = 2 * channels
    return pcm[: len(pcm) - len(pcm) % frame_bytes], sample_rate, channels


def _parse_chunks(blob: bytes) -> tuple[tuple[int, int, int, int], bytes]:
    """Walk the RIFF chunks and return ``((tag, channels, rate, bits), data)``."""
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    pos = 12
    while pos + 8 <= len(blob):
        chunk_id, size = blob[pos : pos + 4], struct.unpack_from("<I", blob, pos + 4)[0]
        body = blob[pos + 8 : pos + 8 + size]
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(body)
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError("WAV data chunk before fmt chunk")
            return fmt, body
        pos += 8 + size + (size & 1)  # chunks are word-aligned
    raise ValueError("WAV file has no fmt chunk" if fmt is None else "WAV file has no data chunk")


def _parse_fmt(body: bytes) -> tuple[int, int, int, int]:
    """Decode a fmt chunk, resolving WAVE_FORMAT_EXTENSIBLE to its sub-format tag."""
    if len(body) < _FMT.size:
        raise ValueError("WAV fmt chunk is truncated")
    tag, channels, sample_rate, _byte_rate, _block_align, bits = _FMT.unpack_from(body)
    if tag == _WAVE_FORMAT_EXTENSIBLE:
        if len(body) < 40:
            raise ValueError("WAVE_FORMAT_EXTENSIBLE fmt chunk is truncated")
        tag = struct.unpack_from("<H", body, 24)[0]  # first two bytes of the sub-format GUID
    if channels <= 0 or sample_rate <= 0:
        raise ValueError(f"invalid WAV fmt: {channels} channels at {sample_rate} Hz")
    return tag, channels, sample_rate, bits
