"""The provider side of one call's wire protocol, as the call simulator plays it.

A ``ProviderClient`` is sans-I/O, like the server-side serializers: it builds the messages a
telephony provider would send (``opening_messages``, ``media_message``, ``dtmf_message``,
``mark_echo``, ``stop_message``) and turns what the bot sends back into ``ServerCommand``
values (``parse_server_message``). It never touches a socket or a clock, so the simulator
engine is the same for every provider and each new provider is one module.

``parse_server_message`` never raises: anything the real provider would reject becomes a
``ProtocolViolation`` (counted in the report), because a simulator that crashes on bad input
cannot tell the user what their bot did wrong.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from phonewire.audio.codecs import Codec
from phonewire.serializers.base import MediaFormat

__all__ = [
    "Clear",
    "HangupRoute",
    "JSONStreamClient",
    "Mark",
    "MediaFormat",
    "Message",
    "PlayAudio",
    "ProtocolViolation",
    "ProviderClient",
    "SendDTMF",
    "SequencedJSONClient",
    "ServerCommand",
    "TwilioStyleIds",
    "dumps",
    "hex_sid",
    "string_parameters",
    "wss_only",
]

Message = str | bytes


# --- what the bot asks the provider to do ------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlayAudio:
    """Queue audio for playback. ``pcm`` is s16le mono at the wire sample rate."""

    pcm: bytes


@dataclass(frozen=True, slots=True)
class Mark:
    """Echo ``name`` back once the audio queued before it has played."""

    name: str


@dataclass(frozen=True, slots=True)
class Clear:
    """Drop queued audio now (and, for Twilio/Telnyx, echo every pending mark)."""


@dataclass(frozen=True, slots=True)
class SendDTMF:
    """Play DTMF digits into the call (Plivo ``sendDTMF``; Twilio streams cannot)."""

    digits: str


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """A message the real provider would reject or warn about. ``code`` is the provider's own
    error/warning code when it has one (Twilio 31950 for binary frames, 31924 otherwise)."""

    reason: str
    code: int | None = None


ServerCommand = PlayAudio | Mark | Clear | SendDTMF | ProtocolViolation


# --- the provider's REST API, as the fake API plays it -----------------------------------


def _never(form: Mapping[str, str], body: Any) -> bool:
    return False


def _no_body(match: re.Match[str]) -> Mapping[str, Any] | None:
    return None


@dataclass(frozen=True, slots=True)
class HangupRoute:
    """The REST endpoint that ends a call, described for ``FakeProviderAPI``.

    ``path`` must have a named group ``call_id`` (and may have ``account_id``).
    ``is_hangup(form, json_body)`` tells a hang-up from other requests to the same path
    (Twilio uses the call resource for redirects too). ``ok_body`` builds the success reply.
    """

    method: str
    path: re.Pattern[str]
    ok_status: int
    gone_status: int
    gone_body: Mapping[str, Any]
    is_hangup: Callable[[Mapping[str, str], Any], bool] = _never
    ok_body: Callable[[re.Match[str]], Mapping[str, Any] | None] = _no_body


# --- the client ----------------------------------------------------------------------------


class ProviderClient(ABC):
    """One call's provider side. Subclasses set the class attributes and implement the
    abstract methods; the simulator only ever talks to this interface.

    Counters (sequence numbers, chunks, timestamps) live in the instance, so use one
    instance per call. Constructors take keyword arguments only and must accept
    ``custom_parameters`` (``create_provider`` and the CLI's ``--param`` pass it).
    """

    #: Registry name, e.g. "twilio" (``phonewire call --provider``).
    name: ClassVar[str] = "generic"
    #: Audio per inbound media message: 20 ms for most providers, 100 ms for Exotel.
    packet_ms: ClassVar[int] = 20
    #: The provider's call-ending REST endpoint, or None if it has none.
    hangup_route: ClassVar[HangupRoute | None] = None
    #: Twilio and Telnyx (and our raw PCM protocol) echo every pending mark when audio is
    #: cleared; Plivo and Vonage document no such thing, so their clients drop them silently.
    echo_marks_on_clear: ClassVar[bool] = True

    _format: MediaFormat

    @property
    def wire_format(self) -> MediaFormat:
        """Audio format on the WebSocket, both directions (set ``_format`` or override)."""
        return self._format

    @property
    @abstractmethod
    def call_id(self) -> str:
        """The provider's call identifier (Twilio CallSid); the fake API matches hang-ups on it."""

    @property
    def stream_id(self) -> str | None:
        """The media stream's identifier, if the provider has one."""
        return None

    @property
    def samples_per_packet(self) -> int:
        return self.wire_format.sample_rate * self.packet_ms // 1000

    def upgrade_headers(self, url: str) -> dict[str, str]:
        """Extra HTTP headers for the WebSocket handshake (signatures, auth tokens)."""
        return {}

    def url_warnings(self, url: str) -> list[str]:
        """Things about ``url`` the real provider would reject or silently change."""
        return []

    @abstractmethod
    def opening_messages(self) -> list[Message]:
        """Messages sent right after the handshake, before any media (Twilio: connected, start)."""

    @abstractmethod
    def media_message(self, encoded: bytes) -> Message:
        """One packet of caller audio, already in the wire encoding (see ``encode``)."""

    @abstractmethod
    def dtmf_message(self, digit: str) -> Message:
        """One key press by the caller."""

    @abstractmethod
    def stop_message(self) -> Message | None:
        """What the provider sends when the call ends, or None if it just closes the socket."""

    @abstractmethod
    def parse_server_message(self, message: Message) -> list[ServerCommand]:
        """Turn one message from the bot into commands. Never raises."""

    @abstractmethod
    def mark_echo(self, name: str) -> Message:
        """The provider's acknowledgement that audio up to mark ``name`` has played."""

    def clear_ack(self) -> Message | None:
        """The provider's answer to a clear, if it sends one (Plivo, Vonage); Twilio does not."""
        return None

    @property
    def wire_codec(self) -> Codec:
        """The ``Codec`` of ``wire_format`` (L16 little-endian; Telnyx may override)."""
        return self.wire_format.codec

    def encode(self, pcm: bytes) -> bytes:
        """s16le PCM at the wire rate -> wire encoding (an odd trailing byte is dropped)."""
        return self.wire_codec.encode(pcm)

    def decode(self, payload: bytes) -> bytes:
        """Wire encoding -> s16le PCM at the wire rate (half a trailing sample is dropped)."""
        return lenient_decode(self.wire_codec, payload)


def lenient_decode(codec: Codec, payload: bytes) -> bytes:
    """``codec.decode`` of ``payload`` without its half trailing sample, if any: the simulator
    reports bad audio as a violation and plays the rest, it never raises."""
    size = codec.bytes_per_sample
    return codec.decode(bytes(payload[: len(payload) // size * size]))


# --- helpers the provider modules share ----------------------------------------------------


def dumps(message: Mapping[str, Any]) -> str:
    """A compact JSON text frame (values JSON cannot carry are sent as their ``str``)."""
    return json.dumps(message, separators=(",", ":"), default=str)


def hex_sid(prefix: str) -> str:
    """A Twilio-style SID: a two-letter prefix and 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def string_parameters(custom_parameters: Mapping[str, Any] | None) -> dict[str, str]:
    """Custom parameters as the providers that carry only strings deliver them."""
    return {str(k): str(v) for k, v in (custom_parameters or {}).items()}


def wss_only(url: str, provider: str) -> list[str]:
    """The warning a provider that streams only to ``wss://`` gives about another scheme."""
    scheme = urlsplit(url).scheme
    if scheme not in ("wss", "ws"):
        return [f"{provider} streams only to wss:// URLs, not {scheme}://"]
    return []


class TwilioStyleIds:
    """Twilio's three ids, which Exotel copies: ``account_sid`` (``AC…``), ``call_sid``
    (``CA…``) and ``stream_sid`` (``MZ…``), random when not given. Mix in before the client
    class: the call is ``call_sid``, the stream ``stream_sid``."""

    account_sid: str
    call_sid: str
    stream_sid: str

    def _init_sids(self, account_sid: str | None, call_sid: str | None, stream_sid: str | None) -> None:
        self.account_sid = account_sid or hex_sid("AC")
        self.call_sid = call_sid or hex_sid("CA")
        self.stream_sid = stream_sid or hex_sid("MZ")

    @property
    def call_id(self) -> str:
        return self.call_sid

    @property
    def stream_id(self) -> str | None:
        return self.stream_sid


class SequencedJSONClient(ProviderClient):
    """A provider speaking JSON text frames that each carry a sequence number (counting every
    message from 1) and the stream's id: Twilio, Telnyx, Exotel and Plivo. Subclasses name the
    two keys; the counters (sequence, media chunk, media time) live here."""

    #: The sequence number's key ("sequenceNumber", "sequence_number").
    sequence_key: ClassVar[str]
    #: The stream id's key ("streamSid", "stream_sid", "stream_id", "streamId").
    stream_key: ClassVar[str]

    _sequence: int = 0
    _chunk: int = 0
    _media_ms: float = 0.0

    def _next_sequence(self) -> str | int:
        """The next sequence number; a string, as most providers send it."""
        self._sequence += 1
        return str(self._sequence)

    def _message(self, event: str, **fields: Any) -> str:
        """One message of this stream: event, sequence number, stream id, then ``fields``."""
        return dumps(
            {"event": event, self.sequence_key: self._next_sequence(), self.stream_key: self.stream_id, **fields}
        )

    def _advance_media(self, encoded: bytes) -> float:
        """Count one media message of ``encoded`` wire bytes; the stream time (ms) it starts at."""
        self._chunk += 1
        at = self._media_ms
        fmt = self.wire_format
        self._media_ms += len(encoded) / fmt.bytes_per_sample * 1000 / fmt.sample_rate
        return at


class JSONStreamClient(SequencedJSONClient):
    """What Twilio, Telnyx and Exotel share: the bot sends ``media``, ``mark`` and ``clear`` for
    this stream, each provider checks the media its own way (``_parse_media``); the caller's
    media carries ``chunk``, ``timestamp`` and ``payload`` (strings), marks echo as ``mark``."""

    #: The provider's name in violation reasons ("Twilio").
    display_name: ClassVar[str]
    #: The provider's error code for a message that does not conform, if it has one.
    error_code: ClassVar[int | None] = None
    #: The code for a binary frame, when the provider has its own (Twilio's warning 31950).
    binary_code: ClassVar[int | None] = None
    #: Must the bot's messages name the stream (Telnyx's may leave it out)?
    stream_key_required: ClassVar[bool] = True
    #: The caller's media names its track ("inbound").
    media_track: ClassVar[bool] = True
    #: ``media.timestamp`` is the stream time at the chunk's end (Exotel), not its start.
    timestamp_at_end: ClassVar[bool] = False

    def media_message(self, encoded: bytes) -> Message:
        start = self._advance_media(encoded)
        media: dict[str, Any] = {"track": "inbound"} if self.media_track else {}
        media["chunk"] = str(self._chunk)
        media["timestamp"] = str(int(self._media_ms if self.timestamp_at_end else start))
        media["payload"] = base64.b64encode(encoded).decode("ascii")
        return self._message("media", media=media)

    def mark_echo(self, name: str) -> Message:
        return self._message("mark", mark={"name": name})

    def _violation(self, reason: str, code: int | None = None) -> ProtocolViolation:
        return ProtocolViolation(reason, self.error_code if code is None else code)

    def parse_server_message(self, message: Message) -> list[ServerCommand]:
        data = json_text_frame(message, self.display_name, self.error_code, binary_code=self.binary_code)
        if isinstance(data, ProtocolViolation):
            return [data]
        event = data.get("event")
        if event not in ("media", "mark", "clear"):
            return [
                self._violation(f"unknown event {str(event)[:40]!r} ({self.display_name} accepts media, mark, clear)")
            ]
        stream = data.get(self.stream_key)
        if stream is None and self.stream_key_required:
            return [self._violation(f"{event} message without {self.stream_key}")]
        if stream is not None and stream != self.stream_id:
            return [self._violation(f"{event} message for another {self.stream_key} {str(stream)[:40]!r}")]
        if event == "media":
            return self._parse_media(data.get("media"))
        if event == "mark":
            return mark_command(data.get("mark"), self.error_code)
        return [Clear()]

    @abstractmethod
    def _parse_media(self, media: Any) -> list[ServerCommand]:
        """The bot's ``media`` object as commands (audio, and any violations)."""


def media_payload(media: Any) -> bytes | str:
    """The base64-decoded ``media.payload`` of a JSON provider's media message, or (a str) the
    reason it is malformed, for the client to report as a violation with its own error code."""
    if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
        return "media message without a string media.payload"
    try:
        return base64.b64decode(media["payload"], validate=True)
    except (binascii.Error, ValueError):
        return "media.payload is not valid base64"


def mark_command(mark: Any, code: int | None = None) -> list[ServerCommand]:
    """A JSON provider's ``mark`` object as a Mark, or the violation (with ``code``) it is."""
    if isinstance(mark, dict) and isinstance(mark.get("name"), str):
        return [Mark(str(mark["name"]))]
    return [ProtocolViolation("mark message without a string mark.name", code)]


def json_object(message: str, code: int | None = None) -> dict[str, Any] | ProtocolViolation:
    """A JSON text frame as an object, or the violation (with the provider's ``code``) it is."""
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):
        return ProtocolViolation("message is not valid JSON", code)
    if not isinstance(data, dict):
        return ProtocolViolation("message is not a JSON object", code)
    return data


def json_text_frame(
    message: Message, provider: str, code: int | None = None, *, binary_code: int | None = None
) -> dict[str, Any] | ProtocolViolation:
    """For providers that speak JSON text frames only: the message as an object, or the
    violation it is (a binary frame reported with ``binary_code`` when the provider has one)."""
    if isinstance(message, bytes | bytearray | memoryview):
        reason = f"binary frame: {provider} accepts only JSON text frames"
        return ProtocolViolation(reason, code if binary_code is None else binary_code)
    return json_object(message, code)
