"""Deepgram live speech-to-text (``DeepgramSTTService``) and its sans-I/O protocol."""

from phonewire.services.deepgram.live_protocol import LiveOptions
from phonewire.services.deepgram.stt import DeepgramSTTService

__all__ = ["DeepgramSTTService", "LiveOptions"]
