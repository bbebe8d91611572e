"""CartesiaTTSService: Cartesia's Sonic over one WebSocket per call, a context per reply.

On a μ-law phone wire it asks for ``pcm_mulaw`` at 8 kHz and hands the bytes on as
``TTSWireAudioFrame``s, which the output transport sends untouched: no decode, no resample,
no encode between Cartesia and the caller. Word timestamps become one TTSTextFrame per word,
so what the caller heard before a barge-in is known to the word. The base class
(``WebsocketTTSService``) does the socket, contexts, ordering, timeouts and the apology.
"""

from __future__ import annotations

import os
from typing import Any

from phonewire.exceptions import ConfigurationError
from phonewire.services.cartesia.protocol import DEFAULT_BASE_URL, CartesiaProtocol
from phonewire.services.websocket_tts import WebsocketTTSService
from phonewire.services.websocket_tts_protocol import TTSProtocol

__all__ = ["CartesiaTTSService"]

#: A stock English voice ("Barbershop Man" in Cartesia's library).
DEFAULT_VOICE_ID = "a0e99841-438c-4a64-b679-ae501e7d6091"


class CartesiaTTSService(WebsocketTTSService):
    """Cartesia TTS. ``api_key`` defaults to ``CARTESIA_API_KEY``; ``base_url`` to
    ``CARTESIA_BASE_URL`` or ``wss://api.cartesia.ai`` (a ``ws://127.0.0.1:PORT`` base for a
    local stand-in). Other keyword arguments go to ``WebsocketTTSService`` (``sample_rate``,
    ``encoding``, timeouts, ``apology``...)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        voice_id: str = DEFAULT_VOICE_ID,
        model: str = "sonic-3",
        language: str | None = "en",
        max_buffer_delay_ms: int | None = None,
        generation_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        key = api_key or os.environ.get("CARTESIA_API_KEY")
        if not key:
            raise ConfigurationError("CartesiaTTSService needs api_key or CARTESIA_API_KEY")
        self._api_key = key
        self.base_url = (base_url or os.environ.get("CARTESIA_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.voice_id, self.model_name, self.language = voice_id, model, language
        self.max_buffer_delay_ms = max_buffer_delay_ms
        self.generation_config = generation_config
        self.metrics.model = model

    def make_protocol(self, sample_rate: int, encoding: str) -> TTSProtocol:
        return CartesiaProtocol(
            api_key=self._api_key,
            voice_id=self.voice_id,
            model=self.model_name,
            sample_rate=sample_rate,
            encoding=encoding,
            base_url=self.base_url,
            language=self.language,
            max_buffer_delay_ms=self.max_buffer_delay_ms,
            generation_config=self.generation_config,
        )
