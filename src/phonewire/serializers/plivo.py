"""Plivo Audio Streams (``<Stream bidirectional="true" keepCallAlive="true">``).

Wire facts this module relies on (plivo.com audio-streaming protocol reference and guide,
Plivo's stream SDK schemas): JSON text frames both ways, camelCase keys except
``extra_headers``; ``sequenceNumber`` and ``chunk`` are **numbers** and ``timestamp`` a
string; there is no ``connected`` event (the first message is ``start``) and no documented
``stop`` (the socket just closes; a ``stop`` is accepted anyway). Audio is μ-law 8 kHz or
little-endian L16 at 8 or 16 kHz, as the ``<Stream contentType>`` says, and ``playAudio``
must carry the *same* ``contentType``/``sampleRate`` (an integer). ``checkpoint`` is
answered by ``playedStream`` once the audio queued before it has played; ``clearAudio`` by
``clearedAudio``; ``sendDTMF`` plays digits into the call.

Limits: a WebSocket message may be at most 64 KB and Plivo recommends at most 16 KB of base64
per ``playAudio``; the playback queue holds about 60 s. 20 ms packets are far below both,
and ``encode_audio`` splits anything larger so no message exceeds 16 KB of base64.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from phonewire.exceptions import ConfigurationError, LocalProtocolError, RemoteProtocolError
from phonewire.frames import Frame, InputAudioRawFrame
from phonewire.serializers._ids import PLIVO_AUTH_ID, UUID, invalid_id_reason, segment
from phonewire.serializers._json_stream import JSONStreamSerializer, compact_json
from phonewire.serializers._values import (
    DTMF_DIGITS,
    b64decode,
    b64encode,
    counter,
    dtmf_frame,
    field,
    load_object,
    parse_content_type,
    parse_key_values,
    text,
)
from phonewire.serializers.base import (
    CallInfo,
    ClearAcknowledged,
    HangupRequest,
    MediaFormat,
    Message,
    OneFormat,
    PacketPolicy,
    PlaybackMarkReached,
    SerializerEvent,
    hangup_missing,
    interpret_404_as_ended,
)
from phonewire.telephony.rest_auth import basic_auth_header

__all__ = ["PlivoFrameSerializer", "parse_extra_headers", "parse_plivo_start", "plivo_content_type"]

PROVIDER = "plivo"
API_ROOT = "https://api.plivo.com"
DEFAULT_FORMAT = MediaFormat("mulaw", 8000, 1)
#: Largest WebSocket message Plivo accepts.
MAX_MESSAGE_BYTES = 64 * 1024
#: Plivo's recommended maximum of base64 characters in one playAudio.
MAX_PLAY_AUDIO_BASE64 = 16 * 1024
#: Raw audio bytes whose base64 fits MAX_PLAY_AUDIO_BASE64 (a multiple of 2 and of 3).
MAX_PLAY_AUDIO_BYTES = MAX_PLAY_AUDIO_BASE64 // 4 * 3

_ENCODINGS = {
    "audio/x-mulaw": "mulaw",
    "audio/mulaw": "mulaw",
    "audio/pcmu": "mulaw",
    "mulaw": "mulaw",
    "ulaw": "mulaw",
    "pcmu": "mulaw",
    "audio/x-l16": "l16",
    "audio/l16": "l16",
    "l16": "l16",
    "linear16": "l16",
}
_CONTENT_TYPES = {"mulaw": "audio/x-mulaw", "l16": "audio/x-l16"}
_OUTBOUND_EVENTS = frozenset({"playAudio", "checkpoint", "clearAudio", "sendDTMF"})


def plivo_content_type(fmt: MediaFormat) -> str:
    """The ``<Stream contentType>`` value for a format, e.g. ``audio/x-l16;rate=16000``."""
    return f"{_CONTENT_TYPES[fmt.encoding]};rate={fmt.sample_rate}"


def _valid(encoding: str | None, rate: int) -> bool:
    return (encoding == "mulaw" and rate == 8000) or (encoding == "l16" and rate in (8000, 16000))


def _media_format(fmt: Any, default: MediaFormat) -> MediaFormat:
    """``start.mediaFormat`` -> MediaFormat."""
    if fmt is None:
        return default
    if not isinstance(fmt, dict):
        raise RemoteProtocolError("plivo: mediaFormat is not an object")
    raw = fmt.get("encoding")
    if not isinstance(raw, str):
        raise RemoteProtocolError("plivo: mediaFormat.encoding missing or not a string")
    encoding, named_rate = parse_content_type(raw, _ENCODINGS)
    rate = counter(fmt.get("sampleRate"), "mediaFormat.sampleRate", PROVIDER)
    if rate is None:
        rate = named_rate or 8000
    if not _valid(encoding, rate):
        raise RemoteProtocolError(f"plivo: unsupported media format {raw[:24]!r} at {rate} Hz")
    assert encoding is not None
    return MediaFormat(encoding, rate, 1)


def parse_extra_headers(value: Any) -> dict[str, str]:
    """Plivo's ``extra_headers``: ``k=v;k=v`` (guide), ``k=v,k=v`` (XML reference) or a JSON
    object string (SDK comments). Unparseable pieces are skipped, never fatal."""
    return parse_key_values(value)


def parse_plivo_start(msg: dict[str, Any], default_format: MediaFormat = DEFAULT_FORMAT) -> CallInfo:
    """Turn Plivo's ``start`` message into a CallInfo (raises RemoteProtocolError).

    ``extra_headers`` become ``custom_parameters``; ``from``/``to`` are taken from them
    (``from_number``/``From``/``from``) because Plivo's start message has no caller fields.
    ``default_format`` is used when the message has no ``mediaFormat``.
    """
    start = field(msg, "start", dict, PROVIDER)
    stream_id = text(start, "streamId", PROVIDER) or text(msg, "streamId", PROVIDER)
    if not stream_id:
        raise RemoteProtocolError("plivo: start without streamId")
    counter(msg.get("sequenceNumber"), "sequenceNumber", PROVIDER)
    headers = msg.get("extra_headers", start.get("extra_headers"))
    custom = parse_extra_headers(headers)
    return CallInfo(
        provider=PROVIDER,
        call_id=text(start, "callId", PROVIDER),
        stream_id=stream_id,
        media_format=_media_format(start.get("mediaFormat"), default_format),
        account_id=text(start, "accountId", PROVIDER),
        from_number=custom.get("from_number") or custom.get("From") or custom.get("from"),
        to_number=custom.get("to_number") or custom.get("To") or custom.get("to"),
        custom_parameters=custom,
        start_message=msg,
    )


def _configured_format(params: PlivoFrameSerializer.InputParams) -> MediaFormat:
    if params.content_type is None:
        if params.plivo_sample_rate != 8000:
            raise ConfigurationError(
                "plivo: μ-law is 8000 Hz only; for 16 kHz set content_type='audio/x-l16;rate=16000' "
                "(and the same contentType on <Stream>)"
            )
        return DEFAULT_FORMAT
    encoding, rate = parse_content_type(params.content_type, _ENCODINGS)
    rate = rate or params.plivo_sample_rate
    if not _valid(encoding, rate):
        raise ConfigurationError(
            f"plivo: unsupported content_type {params.content_type!r} "
            "(audio/x-mulaw;rate=8000, audio/x-l16;rate=8000 or audio/x-l16;rate=16000)"
        )
    assert encoding is not None
    return MediaFormat(encoding, rate, 1)


class PlivoFrameSerializer(OneFormat, JSONStreamSerializer):
    """Serializer for one Plivo bidirectional audio stream.

    The stream's format is, in order of preference: ``media_format`` (from the call's own
    ``start`` message, see ``parse_plivo_start``), ``InputParams.content_type`` (copy the
    ``<Stream contentType>`` attribute), else μ-law 8 kHz. A ``start`` message fed to
    ``deserialize`` replaces it, since the call's own word beats configuration. Audio we
    send always uses the stream's format, as Plivo requires.

    Args:
        stream_id: the ``start.streamId``.
        call_id, auth_id, auth_token: needed only for automatic hang-up through Plivo's REST
            API (``PLIVO_AUTH_ID``/``PLIVO_AUTH_TOKEN``). Without them hang-up is skipped
            with one warning. ``call_id`` is learnt from ``start`` if not given.
        params: ``PlivoFrameSerializer.InputParams`` (never modified).
        media_format: the stream's format, e.g. ``parse_plivo_start(msg).media_format``.
    """

    provider: ClassVar[str] = PROVIDER
    supports_playback_acks: ClassVar[bool] = True
    supports_dtmf_out: ClassVar[bool] = True
    stream_key: ClassVar[str] = "streamId"
    _outbound_events: ClassVar[frozenset[str]] = _OUTBOUND_EVENTS

    @dataclass(frozen=True, slots=True, kw_only=True)
    class InputParams:
        auto_hang_up: bool = True
        #: Pipeline input rate override, kept for code written against Pipecat; the
        #: transport's ``audio_in_sample_rate`` is the preferred knob.
        sample_rate: int | None = None
        #: Wire rate when ``content_type`` gives none (Pipecat's knob; μ-law is 8000 only).
        plivo_sample_rate: int = 8000
        #: The ``<Stream contentType>`` you configured, e.g. ``"audio/x-l16;rate=16000"``;
        #: used until the start message says otherwise. None: μ-law 8 kHz.
        content_type: str | None = None
        #: REST API root, e.g. a local fake in tests.
        base_url: str | None = None

    def __init__(
        self,
        stream_id: str,
        call_id: str | None = None,
        auth_id: str | None = None,
        auth_token: str | None = None,
        params: InputParams | None = None,
        *,
        media_format: MediaFormat | None = None,
    ) -> None:
        self.params = params or self.InputParams()
        fmt = _configured_format(self.params)
        if media_format is not None:
            if not _valid(media_format.encoding, media_format.sample_rate) or media_format.channels != 1:
                raise ConfigurationError(f"plivo: unsupported media_format {media_format}")
            fmt = media_format
        self.stream_id = self._stream = stream_id
        self.call_id = call_id
        self.auth_id = auth_id
        self._auth_token = auth_token
        self._set_format(fmt)
        self._clear = compact_json({"event": "clearAudio", "streamId": stream_id})
        self.started = False
        self.stopped = False
        #: Highest ``sequenceNumber`` seen (Plivo numbers every message from 1).
        self.last_sequence_number: int | None = None

    def _set_format(self, fmt: MediaFormat) -> None:
        self._format = fmt
        media = {"contentType": _CONTENT_TYPES[fmt.encoding], "sampleRate": fmt.sample_rate}
        head = json.dumps({"event": "playAudio", "media": media}, separators=(",", ":"))
        self._play_prefix = head[:-2] + ',"payload":"'  # strip the closing "}}"

    def __repr__(self) -> str:
        return (
            f"PlivoFrameSerializer(stream_id={self.stream_id!r}, call_id={self.call_id!r}, "
            f"auth_id={self.auth_id!r}, content_type={plivo_content_type(self._format)!r})"
        )

    @property
    def packet_policy(self) -> PacketPolicy:
        # 20 ms packets (160 B μ-law = 216 base64 chars; 640 B L16 16k): far below the 16 KB
        # base64 per playAudio that Plivo recommends and its 64 KB message cap. L16 packets
        # stay whole samples.
        return PacketPolicy(packet_bytes=self._format.bytes_for_ms(20), multiple_of=self._format.bytes_per_sample)

    # --- inbound -----------------------------------------------------------------------

    def deserialize(self, data: Message) -> list[Frame | SerializerEvent]:
        msg = load_object(data, PROVIDER)
        if not isinstance(msg.get("event"), str) or msg["event"] not in self._handlers:
            return self._dispatch(msg)  # raises: unknown event
        seq = counter(msg.get("sequenceNumber"), "sequenceNumber", PROVIDER)
        out = self._dispatch(msg)
        if seq is not None and (self.last_sequence_number is None or seq > self.last_sequence_number):
            self.last_sequence_number = seq
        return out

    def _on_start(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        started = self._accept_start(parse_plivo_start(msg, self._format))
        self._set_format(started.info.media_format)
        if self.call_id is None:
            self.call_id = started.info.call_id
        return [started]

    def _on_media(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        media, callers = self._media(msg)
        counter(media.get("chunk"), "media.chunk", PROVIDER)
        payload = b64decode(media.get("payload"), PROVIDER)
        if not callers or not payload:
            return []
        try:
            pcm = self._format.codec.decode(payload)
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(f"plivo: {exc}") from None
        return [InputAudioRawFrame(audio=pcm, sample_rate=self._format.sample_rate)]

    def _on_dtmf(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        self._check_stream(msg)
        dtmf = field(msg, "dtmf", dict, PROVIDER)
        timestamp = text(dtmf, "timestamp", PROVIDER)
        return [dtmf_frame(dtmf.get("digit"), PROVIDER, {"timestamp": timestamp} if timestamp else None)]

    def _on_played_stream(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        self._check_stream(msg)
        name = msg.get("name")
        if not isinstance(name, str):
            raise RemoteProtocolError("plivo: playedStream without a name")
        return [PlaybackMarkReached(name)]

    def _on_cleared_audio(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        self._check_stream(msg)
        return [ClearAcknowledged()]

    _handlers = {
        "start": _on_start,
        "media": _on_media,
        "dtmf": _on_dtmf,
        "playedStream": _on_played_stream,
        "clearedAudio": _on_cleared_audio,
        # Not in Plivo's protocol reference (the socket just closes), but accepted.
        "stop": JSONStreamSerializer._on_stop,
    }

    # --- outbound ----------------------------------------------------------------------

    def _play(self, wire: bytes) -> list[Message]:
        step = MAX_PLAY_AUDIO_BYTES
        prefix = self._play_prefix
        return [prefix + b64encode(wire[i : i + step]) + '"}}' for i in range(0, len(wire), step)]

    def encode_audio(self, pcm: bytes) -> list[Message]:
        return self._play(self._format.codec.encode(pcm))

    def encode_raw_audio(self, payload: bytes) -> list[Message]:
        if self._format.encoding == "l16" and len(payload) % 2:
            payload = payload[:-1]
        return self._play(payload)

    def encode_clear(self) -> list[Message]:
        return [self._clear]

    def encode_mark(self, name: str) -> list[Message]:
        return [compact_json({"event": "checkpoint", "streamId": self.stream_id, "name": name})]

    def encode_dtmf(self, digits: str) -> list[Message]:
        keys = digits.upper() if isinstance(digits, str) else ""
        if not keys or any(k not in DTMF_DIGITS for k in keys):
            raise LocalProtocolError(f"plivo: DTMF digits must be 0-9, *, # or A-D, got {str(digits)[:20]!r}")
        return [compact_json({"event": "sendDTMF", "dtmf": keys})]

    def encode_message(self, message: Any) -> list[Message]:
        if not isinstance(message, dict) or message.get("event") not in _OUTBOUND_EVENTS:
            raise LocalProtocolError("plivo accepts only playAudio/checkpoint/clearAudio/sendDTMF messages")
        if message["event"] in ("checkpoint", "clearAudio"):
            message = {**message, "streamId": self.stream_id}
        elif message["event"] == "playAudio":
            media = message.get("media")
            ctype = media.get("contentType") if isinstance(media, dict) else None
            if ctype is not None and parse_content_type(str(ctype), _ENCODINGS)[0] != self._format.encoding:
                raise LocalProtocolError("plivo: playAudio contentType must match the stream's contentType")
        try:
            text = json.dumps(message, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise LocalProtocolError(f"plivo: message is not JSON-serializable ({type(exc).__name__})") from None
        if len(text.encode()) > MAX_MESSAGE_BYTES:
            raise LocalProtocolError("plivo: message exceeds Plivo's 64 KB WebSocket limit")
        return [text]

    # --- hang-up -----------------------------------------------------------------------

    @property
    def api_root(self) -> str:
        return (self.params.base_url or API_ROOT).rstrip("/")

    @property
    def hangup_skip_reason(self) -> str | None:
        required = {"call_id": self.call_id, "auth_id": self.auth_id, "auth_token": self._auth_token}
        if (missing := hangup_missing(self.params.auto_hang_up, required)) is not None:
            return missing
        return invalid_id_reason("call_id", self.call_id, UUID) or invalid_id_reason(
            "auth_id", self.auth_id, PLIVO_AUTH_ID
        )

    def hangup_request(self) -> HangupRequest | None:
        if self.hangup_skip_reason is not None:
            return None
        assert self.call_id and self.auth_id and self._auth_token
        return HangupRequest(
            method="DELETE",
            url=f"{self.api_root}/v1/Account/{segment(self.auth_id)}/Call/{segment(self.call_id)}/",
            headers={"Authorization": basic_auth_header(self.auth_id, self._auth_token)},
            interpret=interpret_404_as_ended,  # 204 No Content; 404: the call is already gone
        )
