"""Google services: Gemini Live speech to speech (``GeminiLiveLLMService``), over its
WebSocket protocol directly (``websockets``); ``google-genai`` is used only by the tests to
validate messages against its types."""

from phonewire.services.google.live import GeminiLiveLLMService

__all__ = ["GeminiLiveLLMService"]
