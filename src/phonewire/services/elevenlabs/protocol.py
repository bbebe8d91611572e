"""ElevenLabs' multi-context TTS WebSocket (``multi-stream-input``), sans-I/O.

Client messages (elevenlabs-python ``SendMessageMulti``; reference services.md §6.3):

* initialise a context: ``{"text": " ", "context_id", "voice_settings", "generation_config"}``;
* text: ``{"text": "Hello there ", "context_id"}`` (each input ends with one space);
* end of a reply: ``{"context_id", "flush": true}`` then ``{"context_id", "close_context": true}``.
  A closed context that was set to flush finishes flushing, then ``isFinal`` comes right after
  its last audio; without the close no ``isFinal`` ever comes, and the context keeps one of the
  connection's 5 slots;
* barge-in: ``close_context`` (once: a context already closing keeps flushing whatever it is
  sent, so a second close buys nothing);
* keep-alive: context-less ``{"text": ""}`` for the connection, ``{"text": "", "context_id"}``
  for contexts initialised and not closed (never before the init: that makes the init fail);
* ``{"close_socket": true}`` before hanging up.

Server messages: ``{"audio": b64, "contextId", "alignment", "normalizedAlignment"}`` and
``{"isFinal": true, "contextId"}``; errors ``{"message", "error", "code": 1008}`` then a 1008
close. Alignment is per character, in integer ms **relative to that message's audio**: the
parser keeps, per context, the audio received so far (the offset) and the word in progress
(a word can straddle two messages), and turns characters into ``WordTimes`` (start ms from the
start of the context's audio).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from phonewire.services.websocket_tts_protocol import (
    AudioChunk,
    ContextDone,
    ProtocolEvent,
    ServiceError,
    TTSProtocol,
    WordTimes,
    audio_ms,
)

__all__ = ["DEFAULT_BASE_URL", "MAX_CONTEXTS", "ElevenLabsProtocol", "output_format"]

DEFAULT_BASE_URL = "wss://api.elevenlabs.io"
#: Contexts one multi-context connection may hold ("max_active_conversations" beyond).
MAX_CONTEXTS = 5
#: The server's default inactivity timeout is 20 s; a keep-alive every 10 s stays well inside.
DEFAULT_KEEPALIVE_SECS = 10.0
_PCM_RATES = (8000, 16000, 22050, 24000, 44100)
_MAX_TRACKED = 4 * MAX_CONTEXTS


def output_format(encoding: str, sample_rate: int) -> str:
    """The ``output_format`` for raw audio: ``ulaw_8000`` or ``pcm_<rate>`` (s16le mono)."""
    if encoding == "mulaw":
        if sample_rate != 8000:
            raise ValueError("ElevenLabs μ-law is 8 kHz only (ulaw_8000)")
        return "ulaw_8000"
    if encoding != "l16":
        raise ValueError(f"ElevenLabs encoding must be 'mulaw' or 'l16', not {encoding!r}")
    if sample_rate not in _PCM_RATES:
        raise ValueError(f"ElevenLabs PCM sample_rate must be one of {_PCM_RATES}, not {sample_rate}")
    return f"pcm_{sample_rate}"


@dataclass(slots=True)
class _Context:
    offset_ms: float = 0.0  # audio of this context before the message being parsed
    word: str = ""  # the word in progress (its characters so far)
    word_start_ms: float = 0.0
    closed: bool = False


class ElevenLabsProtocol(TTSProtocol):
    """One call's multi-context connection. ``query`` carries extra URL parameters
    (``language_code``, ``auto_mode``, ``apply_text_normalization``...)."""

    max_contexts = MAX_CONTEXTS
    cancel_holds_slot = True  # a closed context counts toward the 5 until its isFinal
    error_closes_connection = True  # errors come as {"message", "error", "code": 1008}, then a close

    def __init__(
        self,
        *,
        api_key: str,
        voice_id: str,
        model: str,
        sample_rate: int,
        encoding: str,
        base_url: str = DEFAULT_BASE_URL,
        voice_settings: dict[str, Any] | None = None,
        generation_config: dict[str, Any] | None = None,
        pronunciation_dictionary_locators: list[dict[str, Any]] | None = None,
        inactivity_timeout: int | None = None,
        keepalive_secs: float | None = DEFAULT_KEEPALIVE_SECS,
        query: dict[str, str | int | bool] | None = None,
    ) -> None:
        self.output_format = output_format(encoding, sample_rate)
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.voice_id, self.model = voice_id, model
        self.encoding, self.sample_rate = encoding, sample_rate
        self.voice_settings = dict(voice_settings) if voice_settings else None
        self.generation_config = dict(generation_config) if generation_config else None
        self.locators = [dict(x) for x in pronunciation_dictionary_locators or []]
        self.inactivity_timeout = inactivity_timeout
        self.keepalive_secs = keepalive_secs or None
        self.query = dict(query or {})
        self._contexts: dict[str, _Context] = {}

    # --- connection -----------------------------------------------------------------------

    def url(self) -> str:
        params: dict[str, str | int] = {"model_id": self.model, "output_format": self.output_format}
        if self.inactivity_timeout is not None:
            params["inactivity_timeout"] = self.inactivity_timeout
        for key, value in self.query.items():
            params[key] = str(value).lower() if isinstance(value, bool) else value
        path = f"/v1/text-to-speech/{quote(self.voice_id, safe='')}/multi-stream-input"
        return f"{self.base_url}{path}?{urlencode(params)}"

    def headers(self) -> dict[str, str]:
        return {"xi-api-key": self._api_key}

    # --- client messages --------------------------------------------------------------------

    def open_context(self, context_id: str) -> list[str]:
        message: dict[str, Any] = {"text": " ", "context_id": context_id}
        if self.voice_settings:
            message["voice_settings"] = self.voice_settings
        if self.generation_config:
            message["generation_config"] = self.generation_config
        if self.locators:
            message["pronunciation_dictionary_locators"] = self.locators
        self._contexts[context_id] = _Context()
        while len(self._contexts) > _MAX_TRACKED:  # contexts of a lost connection never end
            del self._contexts[next(iter(self._contexts))]
        return [_dumps(message)]

    def send_text(self, context_id: str, text: str) -> list[str]:
        if not text.strip():
            return []  # "" would be a keep-alive; whitespace alone generates nothing
        if not text[-1].isspace():
            text += " "  # only a reply's last piece lacks it (WordBuffer cuts at whitespace)
        return [_dumps({"text": text, "context_id": context_id})]

    def flush(self, context_id: str) -> list[str]:
        ctx = self._contexts.get(context_id)
        if ctx is None or ctx.closed:
            return []  # a flush for an unknown context would open one at the service
        ctx.closed = True
        return [
            _dumps({"context_id": context_id, "flush": True}),
            _dumps({"context_id": context_id, "close_context": True}),
        ]

    def cancel(self, context_id: str) -> list[str]:
        ctx = self._contexts.pop(context_id, None)  # its late audio is dropped anyway
        if ctx is None or ctx.closed:
            return []  # already closing: it finishes its flush whatever we send
        return [_dumps({"context_id": context_id, "close_context": True})]

    def keepalive(self) -> list[str]:
        messages = [_dumps({"text": ""})]
        messages += [_dumps({"text": "", "context_id": cid}) for cid, c in self._contexts.items() if not c.closed]
        return messages

    def goodbye(self) -> list[str]:
        return [_dumps({"close_socket": True})]

    # --- server messages --------------------------------------------------------------------

    def parse(self, message: str | bytes) -> list[ProtocolEvent]:
        try:
            data = json.loads(message)
        except (ValueError, UnicodeDecodeError):
            return [ServiceError(None, "a message that is not JSON", "bad_message")]
        if not isinstance(data, dict):
            return [ServiceError(None, "a JSON message that is not an object", "bad_message")]
        cid = data.get("contextId", data.get("context_id"))
        cid = cid if isinstance(cid, str) else None
        if "error" in data or ("message" in data and "audio" not in data and "isFinal" not in data):
            return [ServiceError(cid, _error_text(data), _str(data.get("error")) or _str(data.get("code")))]
        if cid is None:
            return []  # not about any context of ours (a default context is never opened)
        ctx = self._contexts.get(cid)
        if ctx is None:  # an unknown or finished context: route it, the service drops it
            ctx = _Context(closed=True)
        events: list[ProtocolEvent] = []
        audio = b""
        raw = data.get("audio")
        if isinstance(raw, str) and raw:
            try:
                audio = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                return [ServiceError(cid, "audio that is not base64", "bad_message")]
        alignment = self._alignment(data)
        words = _words(ctx, alignment) if alignment is not None else []
        if audio:
            events.append(AudioChunk(cid, audio))
            ctx.offset_ms += audio_ms(len(audio), self.encoding, self.sample_rate)
        if data.get("isFinal") is True:
            if ctx.word:
                words.append((ctx.word, ctx.word_start_ms))
                ctx.word = ""
            self._contexts.pop(cid, None)
        if words:
            events.append(WordTimes(cid, tuple(words)))
        if data.get("isFinal") is True:
            events.append(ContextDone(cid))
        return events

    def _alignment(self, data: dict[str, Any]) -> Any:
        """``alignment`` (the text as sent) unless a pronunciation dictionary is in use: then
        ``normalizedAlignment``, since ``alignment`` restarts over substituted words."""
        first, second = ("normalizedAlignment", "alignment") if self.locators else ("alignment", "normalizedAlignment")
        value = data.get(first)
        return value if isinstance(value, dict) else (data.get(second) if isinstance(data.get(second), dict) else None)

    def __repr__(self) -> str:
        return f"ElevenLabsProtocol(base_url={self.base_url!r}, voice_id={self.voice_id!r}, {self.output_format})"


def _words(ctx: _Context, alignment: dict[str, Any]) -> list[tuple[str, float]]:
    """Whole words completed in this message's characters (the last may carry over)."""
    chars, starts = alignment.get("chars"), alignment.get("charStartTimesMs")
    if not isinstance(chars, list) or not isinstance(starts, list):
        return []
    out: list[tuple[str, float]] = []
    for ch, start in zip(chars, starts, strict=False):
        if not isinstance(ch, str) or not isinstance(start, int | float) or isinstance(start, bool):
            continue
        if not start == start or start < 0:  # NaN or negative: not a time
            continue
        if not ch or ch.isspace():
            if ctx.word:
                out.append((ctx.word, ctx.word_start_ms))
                ctx.word = ""
            continue
        if not ctx.word:
            ctx.word_start_ms = ctx.offset_ms + float(start)
        ctx.word += ch
    return out


def _error_text(data: dict[str, Any]) -> str:
    parts = [_str(data.get(k)) for k in ("error", "message")]
    return ": ".join(p for p in parts if p) or "error"


def _str(value: Any) -> str | None:
    return None if value is None or isinstance(value, dict | list) else str(value)[:500]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
