"""One object per wire encoding, and the wire format that names one.

A ``Codec`` knows everything phonewire asks of an encoding: how to decode it to 16-bit
little-endian PCM and encode back, its silence byte (for padding packets), its WAV format tag
and its bytes per sample. Serializers, the output transport and the WAV writer look these up
instead of repeating μ-law/A-law/L16 if-chains:

========  =====  =======  =======  ==============================================
encoding  bytes  silence  WAV tag  codec
========  =====  =======  =======  ==============================================
mulaw     1      0xFF     7        ``MULAW`` (G.711 μ-law)
alaw      1      0xD5     6        ``ALAW`` (G.711 A-law)
l16       2      0x00     1        ``L16`` (little-endian, phonewire's convention);
                                   ``L16_BIG`` for network byte order (RFC 3551)
========  =====  =======  =======  ==============================================

Pure functions and frozen records; no asyncio. Decoding L16 refuses half a sample with a
``CodecError`` (a ``RemoteProtocolError``); encoding drops an odd trailing byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from phonewire.audio.g711 import ALAW_SILENCE, ULAW_SILENCE, alaw_to_pcm, pcm_to_alaw, pcm_to_ulaw, ulaw_to_pcm
from phonewire.exceptions import CodecError

__all__ = ["ALAW", "CODECS", "L16", "L16_BIG", "MULAW", "Codec", "MediaFormat", "codec_for"]


@dataclass(frozen=True, slots=True)
class Codec:
    """An audio encoding as the wire carries it."""

    #: The ``MediaFormat.encoding`` name: "mulaw", "alaw" or "l16".
    name: str
    bytes_per_sample: int
    #: The byte that pads a packet with silence.
    silence_byte: int
    #: WAVE format tag (1 PCM, 6 A-law, 7 μ-law).
    wav_tag: int
    #: Wire bytes -> 16-bit little-endian PCM.
    decode: Callable[[bytes], bytes]
    #: 16-bit little-endian PCM -> wire bytes.
    encode: Callable[[bytes], bytes]

    @property
    def is_g711(self) -> bool:
        """One byte per sample, companded: the bytes can travel untouched (wire mode)."""
        return self.bytes_per_sample == 1


def _l16_le_decode(payload: bytes) -> bytes:
    if len(payload) % 2:
        raise CodecError(f"odd-length L16 payload ({len(payload)} bytes)")
    return payload


def _l16_le_encode(pcm: bytes) -> bytes:
    return bytes(pcm[:-1]) if len(pcm) % 2 else bytes(pcm)


def _l16_be_decode(payload: bytes) -> bytes:
    if len(payload) % 2:
        raise CodecError(f"odd-length L16 payload ({len(payload)} bytes)")
    return np.frombuffer(payload, dtype=np.uint16).byteswap().tobytes()


def _l16_be_encode(pcm: bytes) -> bytes:
    if len(pcm) % 2:
        pcm = pcm[:-1]
    return np.frombuffer(pcm, dtype=np.uint16).byteswap().tobytes()


MULAW = Codec("mulaw", 1, ULAW_SILENCE, 7, ulaw_to_pcm, pcm_to_ulaw)
ALAW = Codec("alaw", 1, ALAW_SILENCE, 6, alaw_to_pcm, pcm_to_alaw)
L16 = Codec("l16", 2, 0x00, 1, _l16_le_decode, _l16_le_encode)
#: L16 in network (big-endian) order, as RTP payloads carry it (Telnyx's default).
L16_BIG = Codec("l16", 2, 0x00, 1, _l16_be_decode, _l16_be_encode)
#: The codec for each ``MediaFormat.encoding`` (L16 little-endian).
CODECS: dict[str, Codec] = {c.name: c for c in (MULAW, ALAW, L16)}


def codec_for(encoding: str, *, byte_order: str = "little") -> Codec:
    """The codec for an encoding name; ``byte_order="big"`` picks ``L16_BIG`` for L16."""
    if encoding == "l16" and byte_order == "big":
        return L16_BIG
    try:
        return CODECS[encoding]
    except KeyError:
        raise ValueError(f"unknown encoding {encoding!r} (mulaw, alaw or l16)") from None


@dataclass(frozen=True, slots=True)
class MediaFormat:
    """Audio on the wire. ``encoding`` is one of "mulaw", "alaw", "l16" (little-endian)."""

    encoding: str
    sample_rate: int
    channels: int = 1

    @property
    def codec(self) -> Codec:
        """The encoding's ``Codec`` (L16 little-endian)."""
        return CODECS[self.encoding]

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.encoding == "l16" else 1

    def bytes_for_ms(self, ms: float) -> int:
        return int(self.sample_rate * ms / 1000) * self.bytes_per_sample * self.channels
