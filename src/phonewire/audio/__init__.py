"""Pure, synchronous audio building blocks: G.711, resampling, WAV, packetizing, analysis."""

from phonewire.audio.analysis import dominant_frequency, rms_dbfs, silence, tone
from phonewire.audio.g711 import (
    ALAW_SILENCE,
    ULAW_SILENCE,
    alaw_to_pcm,
    pcm_to_alaw,
    pcm_to_ulaw,
    ulaw_to_pcm,
)
from phonewire.audio.packetizer import Packetizer
from phonewire.audio.resample import RateConverter, StreamResampler
from phonewire.audio.wav import pcm_to_wav, read_wav, wav_header, write_wav

__all__ = [
    "ALAW_SILENCE",
    "ULAW_SILENCE",
    "Packetizer",
    "RateConverter",
    "StreamResampler",
    "alaw_to_pcm",
    "dominant_frequency",
    "pcm_to_alaw",
    "pcm_to_ulaw",
    "pcm_to_wav",
    "read_wav",
    "rms_dbfs",
    "silence",
    "tone",
    "ulaw_to_pcm",
    "wav_header",
    "write_wav",
]
