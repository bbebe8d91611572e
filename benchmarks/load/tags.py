"""Packet tags: a sequence number hidden in the first 9 μ-law bytes of every caller packet.

The load generator writes a tag at the start of each 20 ms packet it sends; an echo bot
returns the audio unchanged (μ-law -> PCM16 -> μ-law is exact for every code but 0x7F, which
tags never use), so the tag comes back in the echoed packet and identifies which packet it
is. Server probes read the same tag from the wire (base64) and from the PCM frame inside the
pipeline, which lets one packet be followed through every stage without any shared state.

The tag is 4 sync codes then 5 codes carrying 4 bits each (20 bits: 5.8 hours of packets
per call). All 9 codes are from G.711's smallest segment: |sample| <= 120 of 32768, about
-49 dBFS, so tags are inaudible and do not trip a VAD's loudness gate.

9 bytes are exactly 12 base64 characters, so the tag's base64 is a prefix of the payload's
base64 and the rest of the packet can be encoded once, ahead of time.

Standard library only: this module is imported by the phonewire server, Pipecat's server
(its own virtual environment) and the load generator.
"""

from __future__ import annotations

import binascii
import struct

__all__ = [
    "SYNC",
    "TAG_BYTES",
    "TAG_B64_CHARS",
    "MAX_SEQ",
    "make_tag",
    "sampled_b64",
    "sampled_pcm",
    "tag_b64",
    "seq_from_b64",
    "seq_from_ulaw",
    "seq_from_pcm",
    "ulaw_code_to_pcm",
]

SYNC = bytes([0x71, 0x7A, 0x73, 0x7C])
TAG_BYTES = 9
TAG_B64_CHARS = 12
MAX_SEQ = (1 << 20) - 1
_NIBBLE_BASE = 0xF0  # 0xF0..0xFF: +120 .. 0 in steps of 8


def ulaw_code_to_pcm(code: int) -> int:
    """G.711 μ-law decoding of one code (ITU-T G.711 / audioop.ulaw2lin)."""
    code = ~code & 0xFF
    sign, exponent, mantissa = code & 0x80, (code >> 4) & 0x07, code & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -magnitude if sign else magnitude


_SYNC_PCM = tuple(ulaw_code_to_pcm(c) for c in SYNC)
_PCM_TO_NIBBLE = {ulaw_code_to_pcm(_NIBBLE_BASE | n): n for n in range(16)}
_UNPACK_PCM = struct.Struct("<9h").unpack_from


#: Probes time one packet in four (seq % 16 < 4), so their own cost stays small. The last of
#: the tag's 12 base64 characters encodes the lowest nibble, so the choice is one byte lookup:
#: the characters for nibbles 0-3 are "w", "x", "y", "z"; in PCM, the last tag sample is
#: 120 - 8 * nibble.
SAMPLED_B64 = frozenset(b"wxyz")
_SAMPLED_MIN_PCM = 96


def sampled_b64(payload: bytes | str) -> bool:
    """Whether the packet whose base64 payload this is belongs to the probe's sample."""
    if len(payload) < TAG_B64_CHARS:
        return False
    last = payload[TAG_B64_CHARS - 1]
    return (last if isinstance(last, int) else ord(last)) in SAMPLED_B64


def sampled_pcm(pcm: bytes) -> bool:
    """The same choice, from the PCM frame an echo bot receives."""
    return len(pcm) >= 2 * TAG_BYTES and int.from_bytes(pcm[16:18], "little", signed=True) >= _SAMPLED_MIN_PCM


def make_tag(seq: int) -> bytes:
    if not 0 <= seq <= MAX_SEQ:
        raise ValueError(f"sequence number {seq} out of range")
    return SYNC + bytes(_NIBBLE_BASE | ((seq >> shift) & 0xF) for shift in (16, 12, 8, 4, 0))


def tag_b64(seq: int) -> str:
    """The 12 base64 characters that start the payload of packet ``seq``."""
    return binascii.b2a_base64(make_tag(seq), newline=False).decode("ascii")


def seq_from_ulaw(data: bytes) -> int:
    """The packet's sequence number from μ-law bytes starting with a tag, else -1."""
    if len(data) < TAG_BYTES or data[:4] != SYNC:
        return -1
    seq = 0
    for code in data[4:TAG_BYTES]:
        if code & 0xF0 != _NIBBLE_BASE:
            return -1
        seq = (seq << 4) | (code & 0x0F)
    return seq


def seq_from_b64(payload: bytes | str) -> int:
    """The sequence number from a base64 payload (only its first 12 characters are read)."""
    try:
        return seq_from_ulaw(binascii.a2b_base64(payload[:TAG_B64_CHARS]))
    except (binascii.Error, ValueError):
        return -1


def seq_from_pcm(pcm: bytes) -> int:
    """The sequence number from decoded PCM16 (the frame an echo bot receives), else -1."""
    if len(pcm) < 2 * TAG_BYTES:
        return -1
    samples = _UNPACK_PCM(pcm)
    if samples[:4] != _SYNC_PCM:
        return -1
    seq = 0
    for value in samples[4:]:
        nibble = _PCM_TO_NIBBLE.get(value)
        if nibble is None:
            return -1
        seq = (seq << 4) | nibble
    return seq
