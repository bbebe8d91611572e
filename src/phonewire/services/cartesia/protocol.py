"""Cartesia's TTS WebSocket, sans-I/O: generation requests out, chunk/timestamps/done/error in.

Per context every input repeats the same fields (model, voice, output format, language);
only ``transcript`` and ``continue`` change. Inputs are concatenated verbatim, so the text
keeps its spacing. The end of a reply is an empty transcript with ``continue: false``; a
barge-in is ``{"context_id", "cancel": true}``. Word timestamps (``add_timestamps``) are in
seconds from the start of the context's audio. See reference services.md §5.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import urlencode

from phonewire.services.websocket_tts_protocol import (
    AudioChunk,
    ContextDone,
    ProtocolEvent,
    ServiceError,
    TTSProtocol,
    WordTimes,
)

__all__ = ["CARTESIA_VERSION", "DEFAULT_BASE_URL", "CartesiaProtocol"]

DEFAULT_BASE_URL = "wss://api.cartesia.ai"
#: The API version sent with every request (cartesia-python 4.x pins this date).
CARTESIA_VERSION = "2026-08-14"
_ENCODINGS = {"mulaw": "pcm_mulaw", "l16": "pcm_s16le"}
_RATES = (8000, 16000, 22050, 24000, 44100, 48000)


class CartesiaProtocol(TTSProtocol):
    """``encoding`` "mulaw" (``pcm_mulaw``, native on phone wires) or "l16" (``pcm_s16le``)."""

    context_expiry_secs = 1.0  # a context expires 1 s after its last audio

    def __init__(
        self,
        *,
        api_key: str,
        voice_id: str,
        model: str,
        sample_rate: int,
        encoding: str,
        base_url: str = DEFAULT_BASE_URL,
        language: str | None = "en",
        max_buffer_delay_ms: int | None = None,
        generation_config: dict[str, Any] | None = None,
        version: str = CARTESIA_VERSION,
    ) -> None:
        if encoding not in _ENCODINGS:
            raise ValueError(f"Cartesia encoding must be one of {sorted(_ENCODINGS)}, not {encoding!r}")
        if sample_rate not in _RATES:
            raise ValueError(f"Cartesia sample_rate must be one of {_RATES}, not {sample_rate}")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.encoding, self.sample_rate = encoding, sample_rate
        self.version = version
        self._fields: dict[str, Any] = {
            "model_id": model,
            "voice": {"mode": "id", "id": voice_id},
            "output_format": {"container": "raw", "encoding": _ENCODINGS[encoding], "sample_rate": sample_rate},
            "add_timestamps": True,
        }
        if language:
            self._fields["language"] = language
        if max_buffer_delay_ms is not None:
            self._fields["max_buffer_delay_ms"] = max_buffer_delay_ms
        if generation_config:
            self._fields["generation_config"] = dict(generation_config)

    def url(self) -> str:
        return f"{self.base_url}/tts/websocket?" + urlencode({"cartesia_version": self.version})

    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self._api_key, "Cartesia-Version": self.version}

    def request(self, context_id: str, transcript: str, *, more: bool) -> dict[str, Any]:
        """One generation request (a dict matching the SDK's ``GenerationRequestParam``)."""
        return {"context_id": context_id, "transcript": transcript, **self._fields, "continue": more}

    def send_text(self, context_id: str, text: str) -> list[str]:
        return [_dumps(self.request(context_id, text, more=True))]

    def flush(self, context_id: str) -> list[str]:
        return [_dumps(self.request(context_id, "", more=False))]

    def cancel(self, context_id: str) -> list[str]:
        return [_dumps({"context_id": context_id, "cancel": True})]

    def parse(self, message: str | bytes) -> list[ProtocolEvent]:
        return parse_message(message)

    def __repr__(self) -> str:
        return f"CartesiaProtocol(base_url={self.base_url!r}, {self.encoding}@{self.sample_rate})"


def parse_message(message: str | bytes) -> list[ProtocolEvent]:
    """Events in one server message. Unknown types (``flush_done``, phonemes) are ignored."""
    try:
        data = json.loads(message)
    except (ValueError, UnicodeDecodeError):
        return [ServiceError(None, "a message that is not JSON", "bad_message")]
    if not isinstance(data, dict):
        return [ServiceError(None, "a JSON message that is not an object", "bad_message")]
    kind, context_id = data.get("type"), data.get("context_id")
    if not isinstance(context_id, str):
        context_id = None
    if kind == "error" or (kind is None and "error" in data):
        return [
            ServiceError(context_id, _error_text(data), _str(data.get("error_code")) or _str(data.get("status_code")))
        ]
    if context_id is None:
        return [ServiceError(None, f"a {kind!r} message without a context_id", "bad_message")]
    if kind == "chunk":
        try:
            audio = base64.b64decode(data.get("data") or "", validate=True)
        except (binascii.Error, TypeError, ValueError):
            return [ServiceError(context_id, "a chunk whose data is not base64", "bad_message")]
        events: list[ProtocolEvent] = [AudioChunk(context_id, audio)] if audio else []
        return events + ([ContextDone(context_id)] if data.get("done") is True else [])
    if kind == "timestamps":
        words = _words(data.get("word_timestamps"))
        return [WordTimes(context_id, words)] if words else []
    if kind == "done":
        return [ContextDone(context_id)]
    return []


def _words(value: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, dict):
        return ()
    words, starts = value.get("words"), value.get("start")
    if not isinstance(words, list) or not isinstance(starts, list):
        return ()
    out = []
    for word, start in zip(words, starts, strict=False):
        if isinstance(word, str) and word and isinstance(start, int | float) and not isinstance(start, bool):
            if start == start and start >= 0:  # not NaN
                out.append((word, float(start) * 1000.0))
    return tuple(out)


def _error_text(data: dict[str, Any]) -> str:
    parts = [_str(data.get(k)) for k in ("title", "message", "error")]
    return ": ".join(p for p in parts if p) or "error"


def _str(value: Any) -> str | None:
    return None if value is None or isinstance(value, dict | list) else str(value)[:500]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
