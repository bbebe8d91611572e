"""Caller audio into the session's input format, with the least work the line allows.

On a μ-law line in wire mode (``InputAudioRawFrame.wire_audio``) and an ``audio/pcmu`` session
the payload is the carried bytes: no decode, no resample, no encode. Any other combination
costs exactly one step per direction that needs it: one resample to 24 kHz for ``audio/pcm``,
or one resample to 8 kHz plus the G.711 encode when a PCM line feeds a G.711 session.
"""

from __future__ import annotations

from phonewire.audio.g711 import alaw_to_pcm, pcm_to_alaw, pcm_to_ulaw, ulaw_to_pcm
from phonewire.audio.resample import RateConverter
from phonewire.frames import InputAudioRawFrame

__all__ = ["CallerAudio"]

_ENCODING = {"pcmu": "mulaw", "pcma": "alaw"}
_DECODE = {"mulaw": ulaw_to_pcm, "alaw": alaw_to_pcm}
_ENCODE = {"pcmu": pcm_to_ulaw, "pcma": pcm_to_alaw}


class CallerAudio:
    __slots__ = ("_converter", "_encoding", "fmt", "passthrough_packets")

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self._encoding = _ENCODING.get(fmt)
        self._converter = RateConverter(24000 if fmt == "pcm" else 8000)
        #: Packets sent exactly as the wire carried them (the zero-transcoding path).
        self.passthrough_packets = 0

    def payload(self, frame: InputAudioRawFrame) -> bytes:
        wire = frame.wire_audio
        if wire is not None and frame.wire_encoding == self._encoding and frame.sample_rate == 8000:
            self.passthrough_packets += 1
            return wire
        pcm = frame.audio
        if not pcm and wire is not None:
            pcm = _DECODE[frame.wire_encoding or "mulaw"](wire)
        pcm = self._converter.convert(pcm, frame.sample_rate)
        return _ENCODE[self.fmt](pcm) if self.fmt in _ENCODE else pcm
