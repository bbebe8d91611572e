"""Cartesia: streaming TTS over its WebSocket (``CartesiaTTSService``). See docs/services/cartesia.md."""

from phonewire.services.cartesia.protocol import CartesiaProtocol
from phonewire.services.cartesia.tts import CartesiaTTSService

__all__ = ["CartesiaProtocol", "CartesiaTTSService"]
