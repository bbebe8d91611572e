"""ElevenLabs: streaming TTS over its multi-context WebSocket (``ElevenLabsTTSService``).
See docs/services/elevenlabs.md."""

from phonewire.services.elevenlabs.protocol import ElevenLabsProtocol
from phonewire.services.elevenlabs.tts import ElevenLabsTTSService

__all__ = ["ElevenLabsProtocol", "ElevenLabsTTSService"]
