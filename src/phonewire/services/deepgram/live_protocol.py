"""Deepgram live (``/v1/listen``) protocol, sans-I/O: the URL, the control messages, the events.

Nothing here touches a socket or a clock, so the same code serves the service, the fake server's
tests and property tests. Shapes follow deepgram-sdk's ``listen/v1/types`` (``ListenV1Results``,
``ListenV1Metadata``, ``ListenV1UtteranceEnd``, ``ListenV1SpeechStarted``, ``ListenV1Error``).

Why the parser never raises: a malformed or unknown message from the peer becomes a
``ProtocolErrorEvent`` the service logs and counts; one bad message must not end a call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

__all__ = [
    "CLOSE_STREAM",
    "DEFAULT_BASE_URL",
    "ENCODINGS",
    "FINALIZE",
    "KEEPALIVE",
    "DeepgramEvent",
    "ErrorEvent",
    "LiveOptions",
    "MetadataEvent",
    "ProtocolErrorEvent",
    "SpeechStartedEvent",
    "TranscriptEvent",
    "UtteranceEndEvent",
    "Word",
    "auth_headers",
    "bytes_per_second",
    "describe_close",
    "listen_url",
    "parse_message",
]

DEFAULT_BASE_URL = "wss://api.deepgram.com"
ENCODINGS = frozenset(
    {"linear16", "linear32", "flac", "alaw", "mulaw", "amr-nb", "amr-wb", "opus", "ogg-opus", "speex", "g729"}
)
#: Text control frames (Deepgram wants them as text, audio as binary).
KEEPALIVE = json.dumps({"type": "KeepAlive"})
FINALIZE = json.dumps({"type": "Finalize"})
CLOSE_STREAM = json.dumps({"type": "CloseStream"})
_CLOSE_REASONS = {
    "NET-0001": "no audio or KeepAlive reached Deepgram within its timeout",
    "NET-0000": "Deepgram sent nothing within its timeout",
    "DATA-0000": "Deepgram could not decode the audio (wrong encoding or sample rate?)",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveOptions:
    """Query parameters of a live connection (Pipecat's ``LiveOptions`` idea, these names).

    ``encoding``/``sample_rate`` None: the service picks them from the call (``mulaw``/8000 on a
    μ-law wire, else ``linear16`` at the pipeline rate). ``endpointing`` is Deepgram's silence (ms)
    before ``speech_final``; ``False`` disables it. ``extra`` adds any other documented parameter
    (``keyterm``, ``numerals``...) verbatim; a list value repeats the parameter.
    """

    model: str = "nova-3"
    language: str | None = "en-US"
    encoding: str | None = None
    sample_rate: int | None = None
    channels: int = 1
    interim_results: bool = True
    punctuate: bool = True
    smart_format: bool = True
    endpointing: int | bool | None = 300
    utterance_end_ms: int | None = 1000
    vad_events: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def with_audio(self, encoding: str, sample_rate: int) -> LiveOptions:
        return replace(self, encoding=self.encoding or encoding, sample_rate=self.sample_rate or sample_rate)

    def query(self) -> list[tuple[str, str]]:
        if self.encoding is not None and self.encoding not in ENCODINGS:
            raise ValueError(f"LiveOptions(encoding={self.encoding!r}): one of {sorted(ENCODINGS)}")
        if self.utterance_end_ms is not None and not self.interim_results:
            raise ValueError("LiveOptions: utterance_end_ms needs interim_results=True (Deepgram's rule)")
        items: list[tuple[str, Any]] = [("model", self.model), ("language", self.language)]
        if self.encoding is not None:
            items += [("encoding", self.encoding), ("sample_rate", self.sample_rate)]
        items += [
            ("channels", self.channels),
            ("interim_results", self.interim_results),
            ("punctuate", self.punctuate),
            ("smart_format", self.smart_format),
            ("endpointing", self.endpointing),
            ("utterance_end_ms", self.utterance_end_ms),
            ("vad_events", self.vad_events),
        ]
        for key, value in self.extra.items():
            items += [(key, v) for v in value] if isinstance(value, list | tuple) else [(key, value)]
        return [(k, _wire(v)) for k, v in items if v is not None]


def _wire(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def listen_url(base_url: str | None, options: LiveOptions) -> str:
    """``<base>/v1/listen?<query>``; ``base_url`` may be ``wss://host``, ``ws://127.0.0.1:PORT``,
    ``https://host`` (mapped to wss) or already end in ``/v1/listen``."""
    parts = urlsplit((base_url or DEFAULT_BASE_URL).rstrip("/"))
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"Deepgram base_url {base_url!r}: use wss://, ws://, https:// or http://")
    path = parts.path if parts.path.endswith("/v1/listen") else parts.path + "/v1/listen"
    return urlunsplit((scheme, parts.netloc, path, urlencode(options.query()), ""))


def auth_headers(api_key: str) -> dict[str, str]:
    """``Token <key>`` for an API key; a temporary JWT (three dot-separated parts) is a Bearer."""
    scheme = "Bearer" if api_key.count(".") == 2 else "Token"
    return {"Authorization": f"{scheme} {api_key}"}


def bytes_per_second(encoding: str, sample_rate: int, channels: int = 1) -> int:
    width = {"mulaw": 1, "alaw": 1, "linear16": 2, "linear32": 4}.get(encoding)
    if width is None:
        raise ValueError(f"cannot stream raw {encoding!r} audio (use mulaw, alaw, linear16 or linear32)")
    return width * sample_rate * channels


def describe_close(code: int | None, reason: str | None) -> str:
    """A log-safe account of a close frame (Deepgram puts ``NET-0001`` etc. in the reason)."""
    reason = (reason or "")[:120]
    for key, text in _CLOSE_REASONS.items():
        if key in reason:
            return f"close {code} {key}: {text}"
    return f"close {code} {reason!r}" if reason else f"close {code}"


# --- events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float
    confidence: float
    punctuated_word: str | None = None


@dataclass(frozen=True, slots=True)
class TranscriptEvent:
    """A ``Results`` message: ``start``/``duration`` in seconds of this connection's audio."""

    transcript: str
    is_final: bool
    speech_final: bool
    from_finalize: bool
    start: float
    duration: float
    confidence: float = 0.0
    words: tuple[Word, ...] = ()
    languages: tuple[str, ...] = ()

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True, slots=True)
class SpeechStartedEvent:
    timestamp: float


@dataclass(frozen=True, slots=True)
class UtteranceEndEvent:
    last_word_end: float


@dataclass(frozen=True, slots=True)
class MetadataEvent:
    request_id: str
    duration: float


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """Deepgram's ``Error`` message (``variant`` e.g. ``SchemaError``)."""

    variant: str
    description: str


@dataclass(frozen=True, slots=True)
class ProtocolErrorEvent:
    """What we could not understand (bad JSON, a wrong shape, an unknown type)."""

    detail: str


DeepgramEvent = (
    TranscriptEvent | SpeechStartedEvent | UtteranceEndEvent | MetadataEvent | ErrorEvent | ProtocolErrorEvent
)


def parse_message(data: str | bytes) -> DeepgramEvent:
    """One server text frame -> an event. Never raises."""
    try:
        msg = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return ProtocolErrorEvent("not JSON")
    if not isinstance(msg, dict):
        return ProtocolErrorEvent("not a JSON object")
    kind = msg.get("type")
    try:
        if kind == "Results":
            return _results(msg)
        if kind == "SpeechStarted":
            return SpeechStartedEvent(_num(msg.get("timestamp")))
        if kind == "UtteranceEnd":
            return UtteranceEndEvent(_num(msg.get("last_word_end")))
        if kind == "Metadata":
            return MetadataEvent(str(msg.get("request_id", "")), _num(msg.get("duration", 0.0)))
        if kind == "Error":
            return ErrorEvent(str(msg.get("variant", "")), str(msg.get("description", msg.get("message", ""))))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        return ProtocolErrorEvent(f"bad {kind}: {type(exc).__name__}")
    return ProtocolErrorEvent(f"unknown type {str(kind)[:40]!r}")


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number")
    return float(value)


def _results(msg: dict[str, Any]) -> TranscriptEvent:
    alternatives = msg["channel"]["alternatives"]
    best: dict[str, Any] = alternatives[0] if alternatives else {"transcript": "", "confidence": 0.0}
    transcript = best.get("transcript", "")
    if not isinstance(transcript, str):
        raise TypeError("transcript")
    words = tuple(
        Word(str(w["word"]), _num(w["start"]), _num(w["end"]), _num(w.get("confidence", 0.0)), w.get("punctuated_word"))
        for w in best.get("words") or ()
    )
    return TranscriptEvent(
        transcript=transcript.strip(),
        is_final=msg.get("is_final") is True,
        speech_final=msg.get("speech_final") is True,
        from_finalize=msg.get("from_finalize") is True,
        start=_num(msg.get("start", 0.0)),
        duration=_num(msg.get("duration", 0.0)),
        confidence=_num(best.get("confidence", 0.0)),
        words=words,
        languages=tuple(str(x) for x in best.get("languages") or ()),
    )
