"""The Vonage Voice API WebSocket endpoint (NCCO ``connect`` → ``websocket``), played from Vonage's side.

Wire facts this module keeps (developer.vonage.com voice/voice-api/concepts/websockets):

* the first frame is text: ``{"event": "websocket:connected", "content-type":
  "audio/l16;rate=16000", …}`` with the NCCO endpoint's ``headers`` flattened at its top level;
* audio is *binary*, both ways: raw 16-bit signed little-endian mono PCM, **exactly 20 ms per
  message** (320 bytes at 8 kHz, 640 at 16 kHz); Vonage refuses other sizes from the bot;
* control is JSON text: the bot's ``{"action": "notify", "payload": {…}}`` is answered with
  ``{"event": "websocket:notify", "payload": {…}}`` once the audio before it has played, and
  ``{"action": "clear"}`` with ``{"event": "websocket:cleared"}``; a key press is
  ``{"event": "websocket:dtmf", "digit": "5", "duration": 260}``;
* there is no stop message: the socket closes when the leg ends;
* hang-up is ``PUT /v1/calls/{uuid}`` with ``{"action": "hangup"}`` → 204.

Vonage never names the call on the socket, so phonewire's NCCO adds a ``call_uuid`` header;
this client does the same.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from phonewire.exceptions import ConfigurationError
from phonewire.testing.providers.base import (
    Clear,
    HangupRoute,
    Mark,
    MediaFormat,
    Message,
    PlayAudio,
    ProtocolViolation,
    ProviderClient,
    ServerCommand,
    dumps,
    json_object,
)

__all__ = ["VONAGE_HANGUP_ROUTE", "VonageClient"]

#: 8000 and 16000 are the documented NCCO choices; 24000 is used by newer integrations.
SAMPLE_RATES = (8000, 16000, 24000)


def _is_hangup(form: Mapping[str, str], body: Any) -> bool:
    # The same endpoint also mutes, earmuffs and transfers; only "hangup" ends the call.
    return isinstance(body, dict) and body.get("action") == "hangup"


VONAGE_HANGUP_ROUTE = HangupRoute(
    method="PUT",
    path=re.compile(r"^/v1/calls/(?P<call_id>[^/]+)$"),
    ok_status=204,
    gone_status=404,
    gone_body={
        "type": "https://developer.nexmo.com/api-errors#not-found",
        "title": "Not Found",
        "detail": "Call ID not found",
    },
    is_hangup=_is_hangup,
)


class VonageClient(ProviderClient):
    """Vonage's side of one WebSocket leg.

    Args:
        sample_rate: 16000 (default) or 8000 (24000 as some newer integrations use), the NCCO
            endpoint's ``content-type: audio/l16;rate=…``.
        call_uuid: the call's UUID (random if None; a ``call_uuid`` custom parameter is used
            if given, so an NCCO's headers can be passed on unchanged).
        custom_parameters: the NCCO endpoint's ``headers``, flattened into
            ``websocket:connected`` (values kept as JSON values).
        dtmf_duration_ms: the ``duration`` of each key press.
        authorization: the value of an ``Authorization`` upgrade header (NCCO
            ``authorization: {"type": "custom", "value": …}``, or a ``Bearer`` JWT), if any.
    """

    name: ClassVar[str] = "vonage"
    packet_ms: ClassVar[int] = 20
    hangup_route: ClassVar[HangupRoute | None] = VONAGE_HANGUP_ROUTE
    echo_marks_on_clear = False

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        call_uuid: str | None = None,
        custom_parameters: Mapping[str, Any] | None = None,
        dtmf_duration_ms: int = 260,
        authorization: str | None = None,
    ) -> None:
        if sample_rate not in SAMPLE_RATES:
            raise ConfigurationError(f"vonage: sample_rate must be 8000 or 16000 (or 24000), not {sample_rate}")
        self._format = MediaFormat("l16", sample_rate, 1)
        headers = {str(k): v for k, v in (custom_parameters or {}).items()}
        for reserved in ("event", "content-type"):
            if reserved in headers:
                raise ConfigurationError(f"vonage: {reserved!r} cannot be a custom header")
        given = headers.get("call_uuid")
        self.call_uuid = call_uuid or (str(given) if given else str(uuid.uuid4()))
        headers["call_uuid"] = self.call_uuid
        self.headers = headers
        self.dtmf_duration_ms = dtmf_duration_ms
        self.authorization = authorization
        self._notify_payloads: dict[str, Any] = {}

    # --- identity and format ----------------------------------------------------------------

    @property
    def call_id(self) -> str:
        return self.call_uuid

    @property
    def frame_bytes(self) -> int:
        """The one size of binary frame Vonage sends and accepts: 20 ms."""
        return self._format.bytes_for_ms(20)

    def upgrade_headers(self, url: str) -> dict[str, str]:
        return {"Authorization": self.authorization} if self.authorization else {}

    def url_warnings(self, url: str) -> list[str]:
        warnings = []
        scheme = urlsplit(url).scheme
        if scheme not in ("wss", "ws"):
            warnings.append(f"Vonage connects only to ws:// or wss:// URIs, not {scheme}://")
        if len(dumps(self.headers).encode()) > 512:
            warnings.append("Vonage's NCCO endpoint headers hold at most 512 bytes")
        return warnings

    # --- messages Vonage sends ----------------------------------------------------------------

    def opening_messages(self) -> list[Message]:
        connected = {
            "event": "websocket:connected",
            "content-type": f"audio/l16;rate={self._format.sample_rate}",
            **self.headers,
        }
        return [dumps(connected)]

    def media_message(self, encoded: bytes) -> Message:
        return bytes(encoded)

    def dtmf_message(self, digit: str) -> Message:
        return dumps({"event": "websocket:dtmf", "digit": digit, "duration": self.dtmf_duration_ms})

    def mark_echo(self, name: str) -> Message:
        payload = self._notify_payloads.pop(name, {"mark": name})
        return dumps({"event": "websocket:notify", "payload": payload})

    def clear_ack(self) -> Message | None:
        return dumps({"event": "websocket:cleared"})

    def stop_message(self) -> Message | None:
        return None  # Vonage just closes the socket

    # --- messages the bot sends ---------------------------------------------------------------

    def parse_server_message(self, message: Message) -> list[ServerCommand]:
        if isinstance(message, bytes | bytearray | memoryview):
            return self._parse_audio(bytes(message))
        data = json_object(message)
        if isinstance(data, ProtocolViolation):
            return [data]
        action = data.get("action")
        if action == "clear":
            return [Clear()]
        if action == "notify":
            payload = data.get("payload")
            if not isinstance(payload, dict):
                return [ProtocolViolation("notify without an object payload")]
            mark = payload.get("mark")
            # phonewire names its marks in payload.mark; any other payload is echoed as is.
            name = mark if isinstance(mark, str) else dumps(payload)
            self._notify_payloads[name] = payload
            return [Mark(name)]
        return [ProtocolViolation(f"unknown text message {str(message)[:60]!r} (Vonage accepts notify, clear)")]

    def _parse_audio(self, payload: bytes) -> list[ServerCommand]:
        size = self.frame_bytes
        if len(payload) == size:
            return [PlayAudio(payload)]
        commands: list[ServerCommand] = [
            ProtocolViolation(
                f"binary frame of {len(payload)} bytes: Vonage requires exactly 20 ms "
                f"({size} bytes at {self._format.sample_rate} Hz)"
            )
        ]
        pcm = self.decode(payload)
        if pcm:
            commands.append(PlayAudio(pcm))
        return commands
