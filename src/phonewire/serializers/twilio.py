"""Twilio Media Streams (bidirectional ``<Connect><Stream>``).

Wire facts this module relies on (twilio.com/docs/voice/media-streams/websocket-messages):
every message is a JSON text frame; inbound audio is base64 μ-law 8 kHz mono in ``media``;
``sequenceNumber``/``chunk``/``timestamp`` are strings; a ``mark`` we send is echoed when
the audio before it has played, and ``clear`` empties Twilio's buffer and echoes every
outstanding mark at once; anything else we send on a bidirectional stream is error 31924,
so transport messages are limited to Twilio's own three events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from phonewire.audio.g711 import pcm_to_ulaw, ulaw_to_pcm
from phonewire.exceptions import ConfigurationError, LocalProtocolError, RemoteProtocolError
from phonewire.frames import Frame, InputAudioRawFrame, InputDTMFFrame, KeypadEntry
from phonewire.serializers._ids import TWILIO_ACCOUNT_SID, TWILIO_CALL_SID, invalid_id_reason, segment
from phonewire.serializers._json import b64decode, b64encode, field, load_object, optional_str
from phonewire.serializers.base import (
    CallInfo,
    FrameSerializer,
    HangupOutcome,
    HangupRequest,
    MediaFormat,
    Message,
    PlaybackMarkReached,
    SerializerEvent,
    StreamStarted,
    StreamStopped,
)
from phonewire.telephony.rest_auth import basic_auth_header

__all__ = ["TwilioFrameSerializer", "parse_twilio_start"]

PROVIDER = "twilio"
WIRE_FORMAT = MediaFormat("mulaw", 8000, 1)
_OUTBOUND_EVENTS = frozenset({"media", "mark", "clear"})


def parse_twilio_start(msg: dict[str, Any]) -> CallInfo:
    """Turn Twilio's ``start`` message into a CallInfo (raises RemoteProtocolError)."""
    start = field(msg, "start", dict, PROVIDER)
    stream_sid = optional_str(start, "streamSid") or optional_str(msg, "streamSid")
    if not stream_sid:
        raise RemoteProtocolError("twilio: start without streamSid")
    params = start.get("customParameters") or {}
    if not isinstance(params, dict):
        raise RemoteProtocolError("twilio: customParameters is not an object")
    custom = {str(k): str(v) for k, v in params.items()}
    return CallInfo(
        provider=PROVIDER,
        call_id=optional_str(start, "callSid"),
        stream_id=stream_sid,
        media_format=_media_format(start.get("mediaFormat")),
        account_id=optional_str(start, "accountSid"),
        from_number=custom.get("from_number") or custom.get("From") or custom.get("from"),
        to_number=custom.get("to_number") or custom.get("To") or custom.get("to"),
        custom_parameters=custom,
        start_message=msg,
    )


def _media_format(fmt: Any) -> MediaFormat:
    # Twilio documents mediaFormat as always μ-law/8000/mono; anything else is a forgery or a bug.
    if fmt is None:
        return WIRE_FORMAT
    if not isinstance(fmt, dict) or fmt.get("encoding") not in ("audio/x-mulaw", None):
        raise RemoteProtocolError(f"twilio: unsupported mediaFormat {fmt!r:.80}")
    if fmt.get("sampleRate", 8000) != 8000 or fmt.get("channels", 1) != 1:
        raise RemoteProtocolError(f"twilio: unsupported mediaFormat {fmt!r:.80}")
    return WIRE_FORMAT


def _interpret_hangup(status: int, body: bytes) -> HangupOutcome:
    if 200 <= status < 300:
        return HangupOutcome.DONE
    if status == 404:
        return HangupOutcome.ALREADY_ENDED  # code 20404: the call is already gone
    if status == 429 or status >= 500:
        return HangupOutcome.RETRY
    return HangupOutcome.FAILED


class TwilioFrameSerializer(FrameSerializer):
    """Serializer for one Twilio media stream.

    Args:
        stream_sid: the stream's ``streamSid`` from the ``start`` message.
        call_sid, account_sid, auth_token: needed only for automatic hang-up through
            Twilio's REST API when the pipeline ends. Without them hang-up is skipped with
            one warning: closing the stream already ends a ``<Connect><Stream>`` call that
            has no TwiML after it.
        params: ``TwilioFrameSerializer.InputParams``.
    """

    provider: ClassVar[str] = PROVIDER
    supports_playback_acks: ClassVar[bool] = True

    @dataclass(frozen=True, slots=True, kw_only=True)
    class InputParams:
        auto_hang_up: bool = True
        #: Pipeline input rate override, kept for code written against Pipecat; the
        #: transport's ``audio_in_sample_rate`` is the preferred knob.
        sample_rate: int | None = None
        twilio_sample_rate: int = 8000
        region: str | None = None
        edge: str | None = None
        #: REST API root, e.g. a local fake in tests; overrides region/edge.
        base_url: str | None = None
        #: API key SID to authenticate hang-up with instead of the account SID.
        api_key_sid: str | None = None

    def __init__(
        self,
        stream_sid: str,
        call_sid: str | None = None,
        account_sid: str | None = None,
        auth_token: str | None = None,
        params: InputParams | None = None,
        *,
        region: str | None = None,
        edge: str | None = None,
        base_url: str | None = None,
    ) -> None:
        self.params = params or self.InputParams()
        if self.params.twilio_sample_rate != 8000:
            raise ConfigurationError("Twilio media streams carry 8000 Hz μ-law only")
        self.stream_sid = stream_sid
        self.call_sid = call_sid
        self.account_sid = account_sid
        self._auth_token = auth_token
        self._region = region or self.params.region
        self._edge = edge or self.params.edge
        self._base_url = base_url or self.params.base_url
        if bool(self._region) != bool(self._edge) and not self._base_url:
            raise ConfigurationError("Twilio region and edge must be given together (or give base_url)")
        self._media_prefix = '{"event":"media","streamSid":' + json.dumps(stream_sid) + ',"media":{"payload":"'
        self._clear = json.dumps({"event": "clear", "streamSid": stream_sid}, separators=(",", ":"))
        self.started = False

    def __repr__(self) -> str:
        return f"TwilioFrameSerializer(stream_sid={self.stream_sid!r}, call_sid={self.call_sid!r})"

    @property
    def input_format(self) -> MediaFormat:
        return WIRE_FORMAT

    @property
    def output_format(self) -> MediaFormat:
        return WIRE_FORMAT

    # --- inbound -----------------------------------------------------------------------

    def deserialize(self, data: Message) -> list[Frame | SerializerEvent]:
        msg = load_object(data, PROVIDER)
        event = msg.get("event")
        handler = self._handlers.get(event) if isinstance(event, str) else None
        if handler is None:
            raise RemoteProtocolError(f"twilio: unknown event {str(event)[:40]!r}")
        return handler(self, msg)

    def _on_connected(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        return []

    def _on_start(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        info = parse_twilio_start(msg)
        if info.stream_id != self.stream_sid:
            raise RemoteProtocolError("twilio: start for another streamSid")
        if self.started:
            raise RemoteProtocolError("twilio: second start on one stream")
        self.started = True
        return [StreamStarted(info)]

    def _check_stream(self, msg: dict[str, Any]) -> None:
        sid = msg.get("streamSid")
        if sid is not None and sid != self.stream_sid:
            raise RemoteProtocolError("twilio: message for another streamSid")

    def _on_media(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        # 50 a second: _check_stream and field() inline on the happy path.
        sid = msg.get("streamSid")
        if sid is not None and sid != self.stream_sid:
            self._check_stream(msg)
        media = msg.get("media")
        if type(media) is not dict:
            media = field(msg, "media", dict, PROVIDER)
        if media.get("track", "inbound") not in ("inbound", "inbound_track"):
            return []  # outbound-track echoes (both_tracks streams) are not the caller
        payload = b64decode(media.get("payload"), PROVIDER)
        if not payload:
            return []
        if self.keep_wire_audio:  # wire mode: the payload as carried, no decode
            return [InputAudioRawFrame(audio=b"", sample_rate=8000, wire_audio=payload, wire_encoding="mulaw")]
        return [InputAudioRawFrame(audio=ulaw_to_pcm(payload), sample_rate=8000)]

    def _on_dtmf(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        self._check_stream(msg)
        digit = field(msg, "dtmf", dict, PROVIDER).get("digit")
        try:
            return [InputDTMFFrame(button=KeypadEntry(digit))]
        except ValueError:
            raise RemoteProtocolError(f"twilio: invalid DTMF digit {str(digit)[:8]!r}") from None

    def _on_mark(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        self._check_stream(msg)
        name = field(msg, "mark", dict, PROVIDER).get("name")
        if not isinstance(name, str):
            raise RemoteProtocolError("twilio: mark without a name")
        return [PlaybackMarkReached(name)]

    def _on_stop(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        self._check_stream(msg)
        return [StreamStopped("stop")]

    _handlers = {
        "connected": _on_connected,
        "start": _on_start,
        "media": _on_media,
        "dtmf": _on_dtmf,
        "mark": _on_mark,
        "stop": _on_stop,
    }

    # --- outbound ----------------------------------------------------------------------

    def encode_audio(self, pcm: bytes) -> list[Message]:
        return [self._media_prefix + b64encode(pcm_to_ulaw(pcm)) + '"}}']

    def encode_raw_audio(self, payload: bytes) -> list[Message]:
        return [self._media_prefix + b64encode(payload) + '"}}']

    def encode_clear(self) -> list[Message]:
        return [self._clear]

    def encode_mark(self, name: str) -> list[Message]:
        mark = {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}
        return [json.dumps(mark, separators=(",", ":"))]

    def encode_message(self, message: Any) -> list[Message]:
        if not isinstance(message, dict) or message.get("event") not in _OUTBOUND_EVENTS:
            raise LocalProtocolError("twilio accepts only media/mark/clear messages (anything else is error 31924)")
        return [json.dumps({**message, "streamSid": self.stream_sid}, separators=(",", ":"))]

    # --- hang-up -----------------------------------------------------------------------

    @property
    def api_root(self) -> str:
        if self._base_url:
            return self._base_url.rstrip("/")
        if self._region and self._edge:
            return f"https://api.{self._edge}.{self._region}.twilio.com"
        return "https://api.twilio.com"

    @property
    def hangup_skip_reason(self) -> str | None:
        if not self.params.auto_hang_up:
            return "auto_hang_up is off"
        missing = [n for n, v in (("call_sid", self.call_sid), ("account_sid", self.account_sid)) if not v]
        if not self._auth_token:
            missing.append("auth_token")
        if missing:
            return f"missing {', '.join(missing)}"
        # Both SIDs come from the peer's start message: only Twilio's own shape reaches a URL.
        return invalid_id_reason("account_sid", self.account_sid, TWILIO_ACCOUNT_SID) or invalid_id_reason(
            "call_sid", self.call_sid, TWILIO_CALL_SID
        )

    def hangup_request(self) -> HangupRequest | None:
        if self.hangup_skip_reason is not None:
            return None
        assert self.account_sid and self.call_sid and self._auth_token
        user = self.params.api_key_sid or self.account_sid
        path = f"/2010-04-01/Accounts/{segment(self.account_sid)}/Calls/{segment(self.call_sid)}.json"
        return HangupRequest(
            method="POST",
            url=self.api_root + path,
            headers={"Authorization": basic_auth_header(user, self._auth_token)},
            form={"Status": "completed"},
            interpret=_interpret_hangup,
        )
