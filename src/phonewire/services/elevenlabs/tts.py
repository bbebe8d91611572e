"""ElevenLabsTTSService: ElevenLabs over its multi-context WebSocket, one connection per call.

On a μ-law phone wire it asks for ``ulaw_8000`` and hands the bytes on as
``TTSWireAudioFrame``s, which the output transport sends untouched: no decode, no resample, no
encode between ElevenLabs and the caller. Character alignment becomes one TTSTextFrame per
word, so what the caller heard before a barge-in is known to the word. The connection holds at
most 5 contexts: each reply's context is flushed and closed at the reply's end, a barge-in
closes it, and a new reply waits for a slot while closed contexts finish (their ``isFinal``).
The base class (``WebsocketTTSService``) does the socket, ordering, timeouts and the apology.
"""

from __future__ import annotations

import os
from typing import Any

from phonewire.exceptions import ConfigurationError
from phonewire.services.elevenlabs.protocol import DEFAULT_BASE_URL, DEFAULT_KEEPALIVE_SECS, ElevenLabsProtocol
from phonewire.services.websocket_tts import WebsocketTTSService
from phonewire.services.websocket_tts_protocol import TTSProtocol

__all__ = ["DEFAULT_GENERATION_CONFIG", "DEFAULT_VOICE_ID", "ElevenLabsTTSService"]

#: A stock voice of ElevenLabs' library ("Rachel").
DEFAULT_VOICE_ID = "21m00Tcm4TlvDq8ikWAM"
#: Generate after 50 characters (the minimum) rather than the server's 120: the first audio
#: of a reply comes after a short phrase, not after two sentences.
DEFAULT_GENERATION_CONFIG: dict[str, Any] = {"chunk_length_schedule": [50, 120, 160, 290]}


class ElevenLabsTTSService(WebsocketTTSService):
    """ElevenLabs TTS. ``api_key`` defaults to ``ELEVENLABS_API_KEY`` (sent as ``xi-api-key``);
    ``base_url`` to ``ELEVENLABS_BASE_URL`` or ``wss://api.elevenlabs.io`` (a
    ``ws://127.0.0.1:PORT`` base for a local stand-in). ``voice_settings`` and
    ``generation_config`` go in each context's init (fixed for the context);
    ``inactivity_timeout`` (s, server default 20, max 180) and ``query`` (``language_code``,
    ``auto_mode``, ``apply_text_normalization``...) in the URL. ``keepalive_secs``: how often
    the idle connection is kept alive (None: never). Other keyword arguments go to
    ``WebsocketTTSService`` (``sample_rate``, ``encoding``, timeouts, ``apology``...)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        voice_id: str = DEFAULT_VOICE_ID,
        model: str = "eleven_flash_v2_5",
        voice_settings: dict[str, Any] | None = None,
        generation_config: dict[str, Any] | None = DEFAULT_GENERATION_CONFIG,
        pronunciation_dictionary_locators: list[dict[str, Any]] | None = None,
        inactivity_timeout: int | None = None,
        keepalive_secs: float | None = DEFAULT_KEEPALIVE_SECS,
        query: dict[str, str | int | bool] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("context_slot_timeout_secs", 5.0)  # closed contexts may still be flushing
        super().__init__(**kwargs)
        key = api_key or os.environ.get("ELEVENLABS_API_KEY")
        if not key:
            raise ConfigurationError("ElevenLabsTTSService needs api_key or ELEVENLABS_API_KEY")
        if inactivity_timeout is not None and not 1 <= inactivity_timeout <= 180:
            raise ValueError("inactivity_timeout must be 1..180 seconds")
        self._api_key = key
        self.base_url = (base_url or os.environ.get("ELEVENLABS_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.voice_id, self.model_name = voice_id, model
        self.voice_settings, self.generation_config = voice_settings, generation_config
        self.pronunciation_dictionary_locators = pronunciation_dictionary_locators
        self.inactivity_timeout = inactivity_timeout
        limit = (inactivity_timeout or 20) / 2
        self.keepalive_secs = min(keepalive_secs, limit) if keepalive_secs else None
        self.query = query
        self.metrics.model = model

    def make_protocol(self, sample_rate: int, encoding: str) -> TTSProtocol:
        return ElevenLabsProtocol(
            api_key=self._api_key,
            voice_id=self.voice_id,
            model=self.model_name,
            sample_rate=sample_rate,
            encoding=encoding,
            base_url=self.base_url,
            voice_settings=self.voice_settings,
            generation_config=self.generation_config,
            pronunciation_dictionary_locators=self.pronunciation_dictionary_locators,
            inactivity_timeout=self.inactivity_timeout,
            keepalive_secs=self.keepalive_secs,
            query=self.query,
        )
