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

import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from phonewire.testing.providers.base import (
    HangupRoute,
    JSONStreamClient,
    MediaFormat,
    Message,
    PlayAudio,
    ServerCommand,
    TwilioStyleIds,
    dumps,
    media_payload,
    string_parameters,
    wss_only,
)

__all__ = ["TWILIO_HANGUP_ROUTE", "TwilioClient"]

MALFORMED_MESSAGE = 31950  # warning: binary frame
PROTOCOL_ERROR = 31924  # error: a message that does not conform

_MEDIA_FORMAT = MediaFormat("mulaw", 8000, 1)


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


class TwilioClient(TwilioStyleIds, JSONStreamClient):
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
    sequence_key: ClassVar[str] = "sequenceNumber"
    stream_key: ClassVar[str] = "streamSid"
    display_name: ClassVar[str] = "Twilio"
    error_code: ClassVar[int | None] = PROTOCOL_ERROR
    binary_code: ClassVar[int | None] = MALFORMED_MESSAGE

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        call_sid: str | None = None,
        stream_sid: str | None = None,
        custom_parameters: Mapping[str, Any] | None = None,
        upgrade_signer: Callable[[str], dict[str, str]] | None = None,
    ) -> None:
        self._init_sids(account_sid, call_sid, stream_sid)
        self.custom_parameters = string_parameters(custom_parameters)
        self._upgrade_signer = upgrade_signer
        self._format = _MEDIA_FORMAT

    # --- identity and format ----------------------------------------------------------------

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
        return warnings + wss_only(url, "Twilio")

    # --- messages Twilio sends ----------------------------------------------------------------

    def opening_messages(self) -> list[Message]:
        connected = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
        start = self._message(
            "start",
            start={
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": dict(self.custom_parameters),
            },
        )
        return [dumps(connected), start]

    def dtmf_message(self, digit: str) -> Message:
        return self._message("dtmf", dtmf={"track": "inbound_track", "digit": digit})

    def stop_message(self) -> Message | None:
        return self._message("stop", stop={"accountSid": self.account_sid, "callSid": self.call_sid})

    # --- messages the bot sends ---------------------------------------------------------------

    def _parse_media(self, media: Any) -> list[ServerCommand]:
        payload = media_payload(media)
        if isinstance(payload, str):
            return [self._violation(payload)]
        commands: list[ServerCommand] = []
        if payload[:4] == b"RIFF":
            # Twilio plays header bytes as a click of noise and flags the stream.
            commands.append(self._violation("media.payload starts with a WAV header; send raw mu-law"))
        if payload:
            commands.append(PlayAudio(self.decode(payload)))
        return commands
