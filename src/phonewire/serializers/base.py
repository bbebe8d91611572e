"""The contract every provider serializer keeps.

A serializer is sans-I/O: it turns one inbound WebSocket message into frames and protocol
events, and turns outbound audio and commands into messages. It never touches a socket,
never sleeps, never calls a REST API (it *describes* a hang-up as a ``HangupRequest``; a
small client in ``phonewire.telephony.hangup`` performs it), and never resamples: audio
crosses this boundary as 16-bit PCM at the *wire* rate, and the transport resamples once
per direction between the wire rate and the pipeline rate.

Bad input raises ``RemoteProtocolError`` and nothing else; the transport logs it, counts
it and carries on with the next message.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

from phonewire.audio.codecs import MediaFormat
from phonewire.call_info import CallInfo
from phonewire.exceptions import LocalProtocolError
from phonewire.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputDTMFFrame,
    OutputDTMFUrgentFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
)

__all__ = [
    "CallInfo",
    "ClearAcknowledged",
    "FrameSerializer",
    "HangupOutcome",
    "HangupRequest",
    "MediaFormat",
    "Message",
    "OneFormat",
    "PacketPolicy",
    "PlaybackMarkReached",
    "ProviderError",
    "SerializerEvent",
    "hangup_missing",
    "interpret_404_as_ended",
    "StreamStarted",
    "StreamStopped",
]

Message = str | bytes

# MediaFormat (phonewire.audio.codecs) and CallInfo (phonewire.call_info) are defined with the
# codecs and beside nothing else respectively; they are re-exported here, where they always were.


@dataclass(frozen=True, slots=True)
class PacketPolicy:
    """How outbound audio must be cut into messages, in *encoded* bytes.

    ``packet_bytes`` is the size of a normal packet. ``multiple_of`` forces every packet
    (including the tail) to a multiple of that many bytes, padding with silence;
    ``exact`` forces every packet to exactly ``packet_bytes`` (Vonage).
    """

    packet_bytes: int
    multiple_of: int = 1
    exact: bool = False


# --- events a serializer reports besides frames ----------------------------------------


@dataclass(frozen=True, slots=True)
class StreamStarted:
    info: CallInfo


@dataclass(frozen=True, slots=True)
class StreamStopped:
    """The provider ended the stream (Twilio/Telnyx/Exotel ``stop``)."""

    reason: str | None = None


@dataclass(frozen=True, slots=True)
class PlaybackMarkReached:
    """The provider says audio up to the mark called ``name`` has played (or was cleared)."""

    name: str


@dataclass(frozen=True, slots=True)
class ClearAcknowledged:
    """The provider confirmed a clear (Plivo ``clearedAudio``, Vonage ``websocket:cleared``)."""


@dataclass(frozen=True, slots=True)
class ProviderError:
    code: str | int | None
    title: str
    detail: str = ""


SerializerEvent = StreamStarted | StreamStopped | PlaybackMarkReached | ClearAcknowledged | ProviderError


# --- hang-up ---------------------------------------------------------------------------


class HangupOutcome(Enum):
    DONE = "done"
    ALREADY_ENDED = "already_ended"  # counts as success
    RETRY = "retry"  # 429 / 5xx / transport error: one retry is allowed
    FAILED = "failed"  # 4xx: retrying will not help


def _default_interpret(status: int, body: bytes) -> HangupOutcome:
    if 200 <= status < 300:
        return HangupOutcome.DONE
    if status == 429 or status >= 500:
        return HangupOutcome.RETRY
    return HangupOutcome.FAILED


def interpret_404_as_ended(status: int, body: bytes) -> HangupOutcome:
    """The usual REST answer to a hang-up (Twilio, Plivo, Vonage): 2xx done, 404 the call is
    already gone, 429/5xx retry once, any other 4xx failed."""
    if status == 404:
        return HangupOutcome.ALREADY_ENDED
    return _default_interpret(status, body)


def hangup_missing(auto_hang_up: bool, required: Mapping[str, object]) -> str | None:
    """The shared start of ``hangup_skip_reason``: hang-up switched off, or which of
    ``required`` (name -> value, in the order to report them) are missing."""
    if not auto_hang_up:
        return "auto_hang_up is off"
    missing = [name for name, value in required.items() if not value]
    return f"missing {', '.join(missing)}" if missing else None


@dataclass(frozen=True, slots=True)
class HangupRequest:
    """A REST request that ends the call, described, not performed."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    form: dict[str, str] | None = None
    json: Any = None
    interpret: Callable[[int, bytes], HangupOutcome] = field(default=_default_interpret, repr=False)


# --- the serializer --------------------------------------------------------------------


class OneFormat:
    """Mixin for serializers whose stream carries one format both ways, kept in ``_format``
    (put it before ``FrameSerializer`` in the bases)."""

    _format: MediaFormat

    @property
    def input_format(self) -> MediaFormat:
        return self._format

    @property
    def output_format(self) -> MediaFormat:
        return self._format


class FrameSerializer(ABC):
    """Base class of provider serializers. Subclasses set ``provider`` and implement the
    abstract methods; the generic ``serialize`` keeps code written for Pipecat working."""

    provider: ClassVar[str] = "generic"
    #: True when the provider echoes marks/checkpoints/notifies after playback.
    supports_playback_acks: ClassVar[bool] = False
    #: True when the provider can play DTMF digits into the call.
    supports_dtmf_out: ClassVar[bool] = False
    #: Wire mode, set by the input transport (``use_wire_audio``): G.711 caller audio is
    #: handed over as carried (``InputAudioRawFrame.wire_audio``, empty ``audio``), not decoded.
    #: Serializers that do not support it ignore it and decode as usual.
    keep_wire_audio: bool = False

    @property
    @abstractmethod
    def input_format(self) -> MediaFormat:
        """Format of audio the provider sends us."""

    @property
    @abstractmethod
    def output_format(self) -> MediaFormat:
        """Format of audio we must send the provider."""

    @property
    def packet_policy(self) -> PacketPolicy:
        """Default: 20 ms packets, the phone network's own framing."""
        return PacketPolicy(packet_bytes=self.output_format.bytes_for_ms(20))

    @property
    def silence_byte(self) -> int:
        return self.output_format.codec.silence_byte

    @abstractmethod
    def deserialize(self, data: Message) -> list[Frame | SerializerEvent]:
        """Parse one inbound message. Raises ``RemoteProtocolError`` on bad input."""

    @abstractmethod
    def encode_audio(self, pcm: bytes) -> list[Message]:
        """Wrap one packet of 16-bit PCM at ``output_format.sample_rate`` for the wire."""

    def encode_wire(self, pcm: bytes) -> bytes:
        """PCM16 at the output rate -> bytes in the wire encoding (no envelope)."""
        return self.output_format.codec.encode(pcm)

    def encode_raw_audio(self, payload: bytes) -> list[Message]:
        """Wrap one packet that is already in the wire encoding (used with WAV headers)."""
        raise LocalProtocolError(f"{self.provider} cannot send pre-encoded audio")

    @abstractmethod
    def encode_clear(self) -> list[Message]:
        """Ask the provider to drop audio it has buffered but not yet played."""

    def encode_mark(self, name: str) -> list[Message]:
        """Ask for an acknowledgement when audio sent so far has played."""
        return []

    def encode_message(self, message: Any) -> list[Message]:
        """A transport message from the bot (JSON-able dicts, or text)."""
        import json

        return [message if isinstance(message, str) else json.dumps(message, separators=(",", ":"))]

    def encode_dtmf(self, digits: str) -> list[Message]:
        raise LocalProtocolError(f"{self.provider} has no outbound DTMF over the media stream")

    def hangup_request(self) -> HangupRequest | None:
        """The REST request that ends this call, or None when hang-up is off or impossible."""
        return None

    @property
    def hangup_skip_reason(self) -> str | None:
        """Why ``hangup_request`` returns None (logged once by the transport)."""
        return None

    # Compatibility with code written against Pipecat's serializer API. The transport
    # itself uses the encode_* methods.
    def serialize(self, frame: Frame) -> list[Message]:
        if isinstance(frame, OutputAudioRawFrame):
            return self.encode_audio(frame.audio)
        if isinstance(frame, InterruptionFrame):
            return self.encode_clear()
        if isinstance(frame, OutputTransportMessageFrame | OutputTransportMessageUrgentFrame):
            return self.encode_message(frame.message)
        if isinstance(frame, OutputDTMFFrame | OutputDTMFUrgentFrame):
            return self.encode_dtmf(frame.digits)
        if isinstance(frame, EndFrame | CancelFrame):
            return []
        return []
