"""Vonage Voice API WebSocket endpoint (an NCCO ``connect`` action with a ``websocket`` endpoint).

Wire facts this module relies on (developer.vonage.com/en/voice/voice-api/concepts/websockets):
the protocol mixes frame types. Audio travels as *binary* frames of raw 16-bit signed
little-endian mono PCM, exactly 20 ms per message (320 B at 8 kHz, 640 B at 16 kHz; 960 B at
24 kHz where an integration declares it), in both directions. Control is JSON text: the first
message is ``websocket:connected``, whose ``content-type`` (``audio/l16;rate=16000``) gives the
rate and which carries the NCCO's ``headers`` flattened at its top level; ``websocket:dtmf`` has a
top-level ``digit`` and ``duration``; ``{"action":"notify","payload":{…}}`` is answered by
``websocket:notify`` echoing the payload once the audio before it has played, and
``{"action":"clear"}`` by ``websocket:cleared``. There is no stop message (the socket closes) and
no outbound DTMF over the socket (that is ``PUT /v1/calls/{uuid}/dtmf``). Hang-up is
``PUT /v1/calls/{uuid}`` with ``{"action":"hangup"}`` and an application JWT (RS256).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from phonewire.exceptions import ConfigurationError, LocalProtocolError, RemoteProtocolError
from phonewire.frames import Frame, InputAudioRawFrame, InputDTMFFrame, InputTransportMessageFrame
from phonewire.serializers._ids import UUID, invalid_id_reason, segment
from phonewire.serializers._values import count, keypad, load_object, media_type, preview, text_params
from phonewire.serializers.base import (
    CallInfo,
    ClearAcknowledged,
    FrameSerializer,
    HangupRequest,
    MediaFormat,
    Message,
    OneFormat,
    PacketPolicy,
    PlaybackMarkReached,
    SerializerEvent,
    StreamStarted,
    hangup_missing,
    interpret_404_as_ended,
)

__all__ = ["VonageFrameSerializer", "parse_vonage_connected"]

PROVIDER = "vonage"
DEFAULT_RATE = 16000
#: 8000 and 16000 are the documented NCCO choices; 24000 is used by newer integrations.
SUPPORTED_RATES = (8000, 16000, 24000)
API_ROOT = "https://api.nexmo.com"
_CALL_ID_HEADERS = ("call_uuid", "uuid")
_FROM_HEADERS = ("from", "from_number", "callerID")
_TO_HEADERS = ("to", "to_number")
_NOT_HEADERS = frozenset({"event", "content-type"})
_CLEAR = '{"action":"clear"}'
#: What a call UUID may look like before it goes into a REST URL (Vonage uses RFC 4122 UUIDs).
_CALL_UUID = UUID


def parse_vonage_connected(msg: dict[str, Any]) -> CallInfo:
    """Turn ``websocket:connected`` into a CallInfo (raises RemoteProtocolError).

    The NCCO ``headers`` arrive flattened at the top level and become ``custom_parameters``
    (non-string values as compact JSON). A ``call_uuid`` (or ``uuid``) header, which phonewire's
    NCCO adds, is the call id; ``from``/``to`` (or ``callerID``) headers fill the numbers.
    """
    if msg.get("event") != "websocket:connected":
        raise RemoteProtocolError("vonage: not a websocket:connected message")
    headers = text_params(msg, PROVIDER, skip=_NOT_HEADERS)
    return CallInfo(
        provider=PROVIDER,
        call_id=_first(headers, _CALL_ID_HEADERS),
        stream_id=None,
        media_format=vonage_media_format(msg.get("content-type")),
        from_number=_first(headers, _FROM_HEADERS),
        to_number=_first(headers, _TO_HEADERS),
        custom_parameters=headers,
        start_message=msg,
    )


def _first(headers: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((headers[n] for n in names if headers.get(n)), None)


def vonage_media_format(content_type: Any) -> MediaFormat:
    """``audio/l16;rate=16000`` -> MediaFormat("l16", 16000); absent means 16 kHz."""
    if content_type is None:
        return MediaFormat("l16", DEFAULT_RATE, 1)
    if not isinstance(content_type, str):
        raise RemoteProtocolError("vonage: content-type is not a string")
    mime, params = media_type(content_type)
    rate = count(params.get("rate", str(DEFAULT_RATE)))
    if mime != "audio/l16" or rate not in SUPPORTED_RATES:
        raise RemoteProtocolError(f"vonage: unsupported content-type {preview(content_type, 40)}")
    return MediaFormat("l16", rate, 1)


class VonageFrameSerializer(OneFormat, FrameSerializer):
    """Serializer for one Vonage Voice API WebSocket leg.

    Args:
        params: ``VonageFrameSerializer.InputParams`` (Pipecat's only argument).
        call_uuid: the call's UUID, needed for hang-up. Taken from a ``call_uuid``/``uuid``
            header of ``websocket:connected`` when not given.
        application_id, private_key: the Vonage application's id and RSA private key (PEM)
            that sign the JWT for the hang-up request. Without them hang-up is skipped.
        sample_rate: the *wire* rate (8000, 16000 or 24000), e.g. ``CallInfo.media_format
            .sample_rate``; defaults to ``params.vonage_sample_rate``. ``websocket:connected``
            wins over both.
    """

    provider: ClassVar[str] = PROVIDER
    supports_playback_acks: ClassVar[bool] = True
    supports_dtmf_out: ClassVar[bool] = False

    @dataclass(frozen=True, slots=True, kw_only=True)
    class InputParams:
        #: Wire rate when none is given; must match the NCCO's ``content-type``.
        vonage_sample_rate: int = DEFAULT_RATE
        #: Pipeline input rate override, kept for code written against Pipecat; the
        #: transport's ``audio_in_sample_rate`` is the preferred knob.
        sample_rate: int | None = None
        auto_hang_up: bool = True
        #: REST API root, e.g. a regional endpoint or a local fake in tests.
        base_url: str | None = None

    def __init__(
        self,
        params: InputParams | None = None,
        *,
        call_uuid: str | None = None,
        application_id: str | None = None,
        private_key: str | bytes | None = None,
        sample_rate: int | None = None,
    ) -> None:
        self.params = params or self.InputParams()
        rate = sample_rate or self.params.vonage_sample_rate
        if rate not in SUPPORTED_RATES:
            raise ConfigurationError(f"Vonage WebSockets carry L16 at 8000, 16000 or 24000 Hz, not {rate}")
        self._format = MediaFormat("l16", rate, 1)
        self.call_uuid = call_uuid
        self.application_id = application_id
        self._private_key = private_key
        self.started = False
        #: Inbound binary frames that were not exactly 20 ms (decoded anyway; Vonage promises 20 ms).
        self.irregular_frames = 0

    def __repr__(self) -> str:
        return f"VonageFrameSerializer(call_uuid={self.call_uuid!r}, sample_rate={self._format.sample_rate})"

    @property
    def packet_policy(self) -> PacketPolicy:
        # Vonage requires every binary message to be exactly 20 ms; the tail is padded to a full packet.
        return PacketPolicy(packet_bytes=self._format.bytes_for_ms(20), exact=True)

    # --- inbound -----------------------------------------------------------------------

    def deserialize(self, data: Message) -> list[Frame | SerializerEvent]:
        if isinstance(data, bytes | bytearray | memoryview):
            return self._on_audio(bytes(data))
        msg = load_object(data, PROVIDER)
        event = msg.get("event")
        handler = self._handlers.get(event) if isinstance(event, str) else None
        if handler is None:
            raise RemoteProtocolError(f"vonage: unknown event {preview(event, 40)}")
        return handler(self, msg)

    def _on_audio(self, pcm: bytes) -> list[Frame | SerializerEvent]:
        # Lenient inbound: any whole number of samples is decoded (losing caller audio is worse
        # than an odd frame size); sizes other than 20 ms are only counted. Half a sample cannot
        # be decoded without shifting every later sample, so odd lengths are refused.
        if len(pcm) % 2:
            raise RemoteProtocolError(f"vonage: odd-length binary frame ({len(pcm)} bytes)")
        if not pcm:
            return []
        if len(pcm) != self._format.bytes_for_ms(20):
            self.irregular_frames += 1
        return [InputAudioRawFrame(audio=pcm, sample_rate=self._format.sample_rate)]

    def _on_connected(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        info = parse_vonage_connected(msg)
        if self.started:
            raise RemoteProtocolError("vonage: second websocket:connected")
        self.started = True
        self._format = info.media_format  # the call's own content-type is the truth
        if info.call_id and not self.call_uuid and _CALL_UUID.fullmatch(info.call_id):
            self.call_uuid = info.call_id
        return [StreamStarted(info)]

    def _on_dtmf(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        nested = msg.get("dtmf")
        source = msg if "digit" in msg or not isinstance(nested, dict) else nested
        button = keypad(source.get("digit"), PROVIDER)
        return [InputDTMFFrame(button=button, duration_ms=count(source.get("duration")))]

    def _on_notify(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        payload = msg.get("payload")
        if not isinstance(payload, dict):
            raise RemoteProtocolError("vonage: websocket:notify without an object payload")
        mark = payload.get("mark")
        if isinstance(mark, str):
            return [PlaybackMarkReached(mark)]
        # A notify the application sent itself (encode_message): hand the echo to the bot.
        return [InputTransportMessageFrame(message=msg)]

    def _on_cleared(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        return [ClearAcknowledged()]

    _handlers = {
        "websocket:connected": _on_connected,
        "websocket:dtmf": _on_dtmf,
        "websocket:notify": _on_notify,
        "websocket:cleared": _on_cleared,
    }

    # --- outbound ----------------------------------------------------------------------

    def encode_audio(self, pcm: bytes) -> list[Message]:
        return self.encode_raw_audio(pcm)

    def encode_raw_audio(self, payload: bytes) -> list[Message]:
        # Strict outbound: Vonage rejects anything but exact 20 ms frames; the transport's
        # packetizer (packet_policy.exact) guarantees it, so a wrong size here is our bug.
        size = self._format.bytes_for_ms(20)
        if len(payload) != size:
            raise LocalProtocolError(f"vonage binary frames must be exactly {size} bytes, got {len(payload)}")
        return [bytes(payload)]

    def encode_clear(self) -> list[Message]:
        return [_CLEAR]

    def encode_mark(self, name: str) -> list[Message]:
        return [json.dumps({"action": "notify", "payload": {"mark": name}}, separators=(",", ":"))]

    # --- hang-up -----------------------------------------------------------------------

    @property
    def api_root(self) -> str:
        return (self.params.base_url or API_ROOT).rstrip("/")

    @property
    def hangup_skip_reason(self) -> str | None:
        required = {
            "call_uuid": self.call_uuid,
            "application_id": self.application_id,
            "private_key": self._private_key,
        }
        if (missing := hangup_missing(self.params.auto_hang_up, required)) is not None:
            return missing
        if invalid_id_reason("call_uuid", self.call_uuid, _CALL_UUID):
            return "invalid call_uuid (does not look like a Vonage call UUID)"
        return None

    def hangup_request(self) -> HangupRequest | None:
        if self.hangup_skip_reason is not None:
            return None
        assert self.call_uuid and self.application_id and self._private_key
        # Imported here so that this module imports without the JWT code, and a JWT is minted
        # fresh (short-lived) for each hang-up rather than at construction. A key that is not an
        # RSA PEM raises ConfigurationError.
        from phonewire.telephony.rest_auth import vonage_application_jwt

        token = vonage_application_jwt(self.application_id, self._private_key)
        return HangupRequest(
            method="PUT",
            url=f"{self.api_root}/v1/calls/{segment(self.call_uuid)}",
            headers={"Authorization": f"Bearer {token}"},
            json={"action": "hangup"},
            interpret=interpret_404_as_ended,  # 204 (200 from some proxies); 404: the leg is gone
        )
