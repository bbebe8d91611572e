"""Twilio Media Streams (bidirectional ``<Connect><Stream>``).

Wire facts this module relies on (twilio.com/docs/voice/media-streams/websocket-messages):
every message is a JSON text frame; inbound audio is base64 μ-law 8 kHz mono in ``media``;
``sequenceNumber``/``chunk``/``timestamp`` are strings; a ``mark`` we send is echoed when
the audio before it has played, and ``clear`` empties Twilio's buffer and echoes every
outstanding mark at once; anything else we send on a bidirectional stream is error 31924,
so transport messages are limited to Twilio's own three events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from phonewire.audio.g711 import pcm_to_ulaw, ulaw_to_pcm
from phonewire.exceptions import ConfigurationError, RemoteProtocolError
from phonewire.frames import Frame, InputAudioRawFrame
from phonewire.serializers._ids import TWILIO_ACCOUNT_SID, TWILIO_CALL_SID, invalid_id_reason, segment
from phonewire.serializers._json_stream import INBOUND_TRACKS, JSONStreamSerializer
from phonewire.serializers._values import b64decode, b64encode, dtmf_frame, field, text, text_params
from phonewire.serializers.base import (
    CallInfo,
    HangupRequest,
    MediaFormat,
    Message,
    OneFormat,
    SerializerEvent,
    hangup_missing,
    interpret_404_as_ended,
)
from phonewire.telephony.rest_auth import basic_auth_header

__all__ = ["TwilioFrameSerializer", "parse_twilio_start"]

PROVIDER = "twilio"
WIRE_FORMAT = MediaFormat("mulaw", 8000, 1)
_OUTBOUND_EVENTS = frozenset({"media", "mark", "clear"})


def parse_twilio_start(msg: dict[str, Any]) -> CallInfo:
    """Turn Twilio's ``start`` message into a CallInfo (raises RemoteProtocolError)."""
    start = field(msg, "start", dict, PROVIDER)
    stream_sid = text(start, "streamSid", PROVIDER) or text(msg, "streamSid", PROVIDER)
    if not stream_sid:
        raise RemoteProtocolError("twilio: start without streamSid")
    custom = text_params(start.get("customParameters") or {}, PROVIDER)
    return CallInfo(
        provider=PROVIDER,
        call_id=text(start, "callSid", PROVIDER),
        stream_id=stream_sid,
        media_format=_media_format(start.get("mediaFormat")),
        account_id=text(start, "accountSid", PROVIDER),
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


class TwilioFrameSerializer(OneFormat, JSONStreamSerializer):
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
    stream_key: ClassVar[str] = "streamSid"
    _format = WIRE_FORMAT
    _outbound_events: ClassVar[frozenset[str]] = _OUTBOUND_EVENTS
    _outbound_note: ClassVar[str] = " (anything else is error 31924)"

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
        self.stream_sid = self._stream = stream_sid
        self.call_sid = call_sid
        self.account_sid = account_sid
        self._auth_token = auth_token
        self._region = region or self.params.region
        self._edge = edge or self.params.edge
        self._base_url = base_url or self.params.base_url
        if bool(self._region) != bool(self._edge) and not self._base_url:
            raise ConfigurationError("Twilio region and edge must be given together (or give base_url)")
        self._prefix = self._media_prefix()
        self.started = False

    def __repr__(self) -> str:
        return f"TwilioFrameSerializer(stream_sid={self.stream_sid!r}, call_sid={self.call_sid!r})"

    # --- inbound -----------------------------------------------------------------------

    def _on_start(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        return [self._accept_start(parse_twilio_start(msg))]

    def _on_media(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        # 50 a second: _check_stream and field() inline on the happy path.
        sid = msg.get("streamSid")
        if sid is not None and sid != self.stream_sid:
            self._check_stream(msg)
        media = msg.get("media")
        if type(media) is not dict:
            media = field(msg, "media", dict, PROVIDER)
        if media.get("track", "inbound") not in INBOUND_TRACKS:
            return []  # outbound-track echoes (both_tracks streams) are not the caller
        payload = b64decode(media.get("payload"), PROVIDER)
        if not payload:
            return []
        if self.keep_wire_audio:  # wire mode: the payload as carried, no decode
            return [InputAudioRawFrame(audio=b"", sample_rate=8000, wire_audio=payload, wire_encoding="mulaw")]
        return [InputAudioRawFrame(audio=ulaw_to_pcm(payload), sample_rate=8000)]

    def _on_dtmf(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        self._check_stream(msg)
        return [dtmf_frame(field(msg, "dtmf", dict, PROVIDER).get("digit"), PROVIDER)]

    # --- outbound ----------------------------------------------------------------------

    def encode_audio(self, pcm: bytes) -> list[Message]:
        return [self._prefix + b64encode(pcm_to_ulaw(pcm)) + '"}}']

    def encode_raw_audio(self, payload: bytes) -> list[Message]:
        return [self._prefix + b64encode(payload) + '"}}']

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
        required = {"call_sid": self.call_sid, "account_sid": self.account_sid, "auth_token": self._auth_token}
        if (missing := hangup_missing(self.params.auto_hang_up, required)) is not None:
            return missing
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
            interpret=interpret_404_as_ended,  # 404 (code 20404): the call is already gone
        )
