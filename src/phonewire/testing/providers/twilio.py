"""Twilio Media Streams (bidirectional ``<Connect><Stream>``), played from Twilio's side.

Wire facts this module keeps (Twilio docs, "Media Streams - WebSocket Messages"):

* every message is a JSON text frame; a binary frame draws warning 31950, a malformed or
  unknown message error 31924;
* ``connected`` carries no sequence number; ``sequenceNumber`` then counts every message
  from "1" (``start``), ``media.chunk`` counts per track from "1", ``media.timestamp`` is the
  presentation time in ms since the stream started, and all three are *strings*;
* audio both ways is raw mu-law at 8000 Hz mono, 20 ms (160 bytes) per inbound message;
* a ``mark`` is echoed when the audio sent before it has played; ``clear`` empties the
  playback buffer and echoes every pending mark; ``stop`` ends the stream.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from phonewire.audio.g711 import pcm_to_ulaw, ulaw_to_pcm
from phonewire.testing.providers.base import (
    Clear,
    HangupRoute,
    MediaFormat,
    Message,
    PlayAudio,
    ProtocolViolation,
    ProviderClient,
    ServerCommand,
    json_text_frame,
    mark_command,
    media_payload,
)

__all__ = ["TWILIO_HANGUP_ROUTE", "TwilioClient"]

MALFORMED_MESSAGE = 31950  # warning: binary frame
PROTOCOL_ERROR = 31924  # error: a message that does not conform

_MEDIA_FORMAT = MediaFormat("mulaw", 8000, 1)


def _sid(prefix: str) -> str:
    """Twilio SIDs are a two-letter prefix and 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def _is_hangup(form: Mapping[str, str], body: Any) -> bool:
    # ``canceled`` ends a call that was not answered yet; both end the call.
    return form.get("Status") in ("completed", "canceled")


def _call_resource(match: re.Match[str]) -> dict[str, Any]:
    return {
        "sid": match["call_id"],
        "account_sid": match["account_id"],
        "status": "completed",
    }


TWILIO_HANGUP_ROUTE = HangupRoute(
    method="POST",
    path=re.compile(r"^/2010-04-01/Accounts/(?P<account_id>[^/]+)/Calls/(?P<call_id>[^/]+)\.json$"),
    ok_status=200,
    gone_status=404,
    gone_body={
        "code": 20404,
        "message": "The requested resource was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    },
    is_hangup=_is_hangup,
    ok_body=_call_resource,
)


class TwilioClient(ProviderClient):
    """Twilio's side of one bidirectional Media Stream.

    Args:
        account_sid, call_sid, stream_sid: fixed IDs (random ``AC…``/``CA…``/``MZ…`` if None).
        custom_parameters: the ``<Parameter>`` values, delivered in ``start.customParameters``
            (Twilio only carries strings, so values are converted with ``str``).
        upgrade_signer: hook that returns handshake headers for a URL, e.g. one that adds
            ``X-Twilio-Signature`` from an auth token. None sends no signature.
    """

    name: ClassVar[str] = "twilio"
    packet_ms: ClassVar[int] = 20
    hangup_route: ClassVar[HangupRoute | None] = TWILIO_HANGUP_ROUTE

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        call_sid: str | None = None,
        stream_sid: str | None = None,
        custom_parameters: Mapping[str, Any] | None = None,
        upgrade_signer: Callable[[str], dict[str, str]] | None = None,
    ) -> None:
        self.account_sid = account_sid or _sid("AC")
        self.call_sid = call_sid or _sid("CA")
        self.stream_sid = stream_sid or _sid("MZ")
        self.custom_parameters = {str(k): str(v) for k, v in (custom_parameters or {}).items()}
        self._upgrade_signer = upgrade_signer
        self._sequence = 0
        self._chunk = 0
        self._media_ms = 0.0

    # --- identity and format ----------------------------------------------------------------

    @property
    def wire_format(self) -> MediaFormat:
        return _MEDIA_FORMAT

    @property
    def call_id(self) -> str:
        return self.call_sid

    @property
    def stream_id(self) -> str | None:
        return self.stream_sid

    def upgrade_headers(self, url: str) -> dict[str, str]:
        return dict(self._upgrade_signer(url)) if self._upgrade_signer else {}

    def url_warnings(self, url: str) -> list[str]:
        parts = urlsplit(url)
        warnings = []
        if parts.query:
            warnings.append(
                "Twilio does not support a query string in <Stream url>; pass values with "
                "<Parameter> (they arrive in start.customParameters)"
            )
        if parts.scheme not in ("wss", "ws"):
            warnings.append(f"Twilio streams only to wss:// URLs, not {parts.scheme}://")
        return warnings

    # --- messages Twilio sends ----------------------------------------------------------------

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def opening_messages(self) -> list[Message]:
        connected = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
        start = {
            "event": "start",
            "sequenceNumber": self._next_sequence(),
            "start": {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": dict(self.custom_parameters),
            },
            "streamSid": self.stream_sid,
        }
        return [_dumps(connected), _dumps(start)]

    def media_message(self, encoded: bytes) -> Message:
        self._chunk += 1
        timestamp = int(self._media_ms)
        self._media_ms += len(encoded) * 1000 / _MEDIA_FORMAT.sample_rate
        return _dumps(
            {
                "event": "media",
                "sequenceNumber": self._next_sequence(),
                "media": {
                    "track": "inbound",
                    "chunk": str(self._chunk),
                    "timestamp": str(timestamp),
                    "payload": base64.b64encode(encoded).decode("ascii"),
                },
                "streamSid": self.stream_sid,
            }
        )

    def dtmf_message(self, digit: str) -> Message:
        return _dumps(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next_sequence(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    def mark_echo(self, name: str) -> Message:
        return _dumps(
            {
                "event": "mark",
                "sequenceNumber": self._next_sequence(),
                "streamSid": self.stream_sid,
                "mark": {"name": name},
            }
        )

    def stop_message(self) -> Message | None:
        return _dumps(
            {
                "event": "stop",
                "sequenceNumber": self._next_sequence(),
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                "streamSid": self.stream_sid,
            }
        )

    # --- messages the bot sends ---------------------------------------------------------------

    def parse_server_message(self, message: Message) -> list[ServerCommand]:
        data = json_text_frame(message, "Twilio", PROTOCOL_ERROR, binary_code=MALFORMED_MESSAGE)
        return [data] if isinstance(data, ProtocolViolation) else self._dispatch(data)

    def _dispatch(self, data: dict[str, Any]) -> list[ServerCommand]:
        event = data.get("event")
        if event not in ("media", "mark", "clear"):
            return [_violation(f"unknown event {event!r} (Twilio accepts media, mark, clear)")]
        stream_sid = data.get("streamSid")
        if stream_sid is None:
            return [_violation(f"{event} message without streamSid")]
        if stream_sid != self.stream_sid:
            return [_violation(f"{event} message for another streamSid {stream_sid!r}")]
        if event == "media":
            return _parse_media(data.get("media"))
        if event == "mark":
            return _parse_mark(data.get("mark"))
        return [Clear()]

    # --- codec ------------------------------------------------------------------------------

    def encode(self, pcm: bytes) -> bytes:
        return pcm_to_ulaw(pcm)

    def decode(self, payload: bytes) -> bytes:
        return ulaw_to_pcm(payload)


def _violation(reason: str, code: int = PROTOCOL_ERROR) -> ProtocolViolation:
    return ProtocolViolation(reason, code)


def _parse_media(media: Any) -> list[ServerCommand]:
    payload = media_payload(media)
    if isinstance(payload, str):
        return [_violation(payload)]
    commands: list[ServerCommand] = []
    if payload[:4] == b"RIFF":
        # Twilio plays header bytes as a click of noise and flags the stream.
        commands.append(_violation("media.payload starts with a WAV header; send raw mu-law"))
    if payload:
        commands.append(PlayAudio(ulaw_to_pcm(payload)))
    return commands


def _parse_mark(mark: Any) -> list[ServerCommand]:
    return mark_command(mark, PROTOCOL_ERROR)
