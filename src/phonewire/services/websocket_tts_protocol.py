"""The sans-I/O side of a streaming WebSocket TTS: the events a vendor's messages become, the
interface a vendor protocol implements, and the text buffer that feeds it whole words.

Why a separate module: ``WebsocketTTSService`` (the I/O) is the same for Cartesia and
ElevenLabs; what differs is how a context is opened, fed, flushed, cancelled and closed, and
how the replies parse. Those are pure functions of strings, so they live in a ``TTSProtocol``
per vendor and are tested without a socket (property tests for the parsers).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

__all__ = [
    "AudioChunk",
    "ContextDone",
    "ProtocolEvent",
    "ServiceError",
    "TTSProtocol",
    "WordBuffer",
    "WordTimes",
    "audio_ms",
]


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Audio of one context, in the protocol's ``encoding`` at its ``sample_rate``."""

    context_id: str
    audio: bytes


@dataclass(frozen=True, slots=True)
class WordTimes:
    """Words and where each one's audio starts, in ms from the start of the context's audio."""

    context_id: str
    words: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class ContextDone:
    """The service will send nothing more for this context."""

    context_id: str


@dataclass(frozen=True, slots=True)
class ServiceError:
    """An error message. ``context_id`` None: about the connection, not one context."""

    context_id: str | None
    message: str
    code: str | None = None


ProtocolEvent = AudioChunk | WordTimes | ContextDone | ServiceError


def audio_ms(nbytes: int, encoding: str, sample_rate: int) -> float:
    """Duration of ``nbytes`` of mono audio: G.711 is one byte a sample, PCM16 two."""
    return nbytes * 1000 / (sample_rate * (1 if encoding in ("mulaw", "alaw") else 2))


class TTSProtocol(ABC):
    """One vendor's streaming-TTS protocol. Messages out are JSON text frames; ``parse``
    never raises (bad input is a ``ServiceError``), so one bad message cannot end a call.

    ``encoding`` ("mulaw" or "l16") and ``sample_rate`` describe the audio asked for;
    ``max_contexts`` is how many contexts one connection may hold open (None: no limit);
    ``context_expiry_secs``: a context idle this long after its last audio is gone (Cartesia);
    ``cancel_holds_slot``: a cancelled context keeps its slot at the service until the service
    reports it done (ElevenLabs counts a closed context toward its 5 until its ``isFinal``);
    ``error_closes_connection``: an error not about one context ends the connection (ElevenLabs
    closes with 1008 after it), so the next reply must not be sent on it."""

    encoding: str = "l16"
    sample_rate: int = 8000
    max_contexts: int | None = None
    context_expiry_secs: float | None = None
    keepalive_secs: float | None = None
    cancel_holds_slot: bool = False
    error_closes_connection: bool = False

    @abstractmethod
    def url(self) -> str:
        """The WebSocket URL, credentials in it only where the vendor wants them there."""

    @abstractmethod
    def headers(self) -> dict[str, str]:
        """Handshake headers (auth, version)."""

    def open_context(self, context_id: str) -> list[str]:
        """Messages that create a context before its first text (none by default)."""
        return []

    @abstractmethod
    def send_text(self, context_id: str, text: str) -> list[str]:
        """Messages carrying ``text`` (whole words, spacing included) into the context."""

    @abstractmethod
    def flush(self, context_id: str) -> list[str]:
        """Messages ending the context's input: generate everything, then finish."""

    @abstractmethod
    def cancel(self, context_id: str) -> list[str]:
        """Messages stopping the context at once (barge-in)."""

    def close(self, context_id: str) -> list[str]:
        """Messages releasing a finished context's slot at the service (none by default)."""
        return []

    def keepalive(self) -> list[str]:
        """Messages that keep an idle connection open (none by default)."""
        return []

    def goodbye(self) -> list[str]:
        """Messages sent before the socket is closed; the service then waits (bounded) for the
        server to close it (none by default: the client closes at once)."""
        return []

    @abstractmethod
    def parse(self, message: str | bytes) -> list[ProtocolEvent]:
        """Events in one server message; never raises."""


_WORD_END = re.compile(r"\s")
_SENTENCE_END = re.compile(r"[.!?;:](\s|$)")


class WordBuffer:
    """LLM tokens in, whole words out. Why a buffer at all: a token can end mid-word
    ("Hel" + "lo"), and vendors concatenate inputs verbatim, so only text up to the last
    whitespace is released; the first release of a reply waits for ``first_words`` words (or
    a sentence end) because Cartesia's prosody wants a few words of context to start."""

    __slots__ = ("_text", "first_words", "released")

    def __init__(self, first_words: int = 3) -> None:
        self.first_words = first_words
        self._text = ""
        self.released = False

    def push(self, token: str) -> str:
        """Text now ready to send (maybe "")."""
        self._text += token
        cut = max((m.end() for m in _WORD_END.finditer(self._text)), default=0)
        if not cut:
            return ""
        head = self._text[:cut]
        if not self.released and len(head.split()) < self.first_words and not _SENTENCE_END.search(head):
            return ""
        self._text = self._text[cut:]
        self.released = True
        return head

    def flush(self) -> str:
        """Everything left (the reply's end)."""
        rest, self._text = self._text, ""
        if rest:
            self.released = True
        return rest
