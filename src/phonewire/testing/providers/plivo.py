"""Plivo Audio Streams (``<Stream bidirectional="true" keepCallAlive="true">``), played from Plivo's side.

Wire facts this module keeps (plivo.com audio-streaming protocol reference and guide, Plivo's
stream SDK schemas):

* JSON text frames both ways, camelCase keys except ``extra_headers``;
* no ``connected``: the first message is ``start`` with ``start.{callId, streamId, accountId,
  tracks, mediaFormat{encoding, sampleRate}}`` and the ``<Stream extraHeaders>`` as a
  ``key=value;key=value`` string in ``extra_headers`` (repeated on media and dtmf messages);
* ``sequenceNumber`` and ``media.chunk`` are **numbers**, ``timestamp`` a string (ms);
* audio is μ-law 8 kHz or little-endian L16 at 8/16 kHz (the ``<Stream contentType>``), and
  every ``playAudio`` must carry the same ``contentType`` and ``sampleRate``;
* ``checkpoint`` is answered by ``playedStream`` once the audio before it has played,
  ``clearAudio`` by ``clearedAudio``; ``sendDTMF`` plays digits into the call;
* a WebSocket message may be at most 64 KB; there is no ``stop``: the socket just closes.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
import time
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from phonewire.exceptions import ConfigurationError
from phonewire.testing.providers.base import (
    Clear,
    HangupRoute,
    Mark,
    MediaFormat,
    Message,
    PlayAudio,
    ProtocolViolation,
    SendDTMF,
    SequencedJSONClient,
    ServerCommand,
    dumps,
    json_object,
    string_parameters,
)

__all__ = ["PLIVO_HANGUP_ROUTE", "PlivoClient"]

#: Largest WebSocket message Plivo accepts.
MAX_MESSAGE_BYTES = 64 * 1024
#: Plivo documents ``extraHeaders`` as at most 512 bytes of alphanumeric keys.
MAX_EXTRA_HEADERS = 512

_CONTENT_TYPES = {
    "audio/x-mulaw;rate=8000": MediaFormat("mulaw", 8000, 1),
    "audio/x-l16;rate=8000": MediaFormat("l16", 8000, 1),
    "audio/x-l16;rate=16000": MediaFormat("l16", 16000, 1),
}
_MIME = {"mulaw": "audio/x-mulaw", "l16": "audio/x-l16"}
_DTMF_DIGITS = frozenset("0123456789*#ABCD")


def _is_hangup(form: Mapping[str, str], body: Any) -> bool:
    return True  # DELETE on the call resource ends the call


PLIVO_HANGUP_ROUTE = HangupRoute(
    method="DELETE",
    path=re.compile(r"^/v1/Account/(?P<account_id>[^/]+)/Call/(?P<call_id>[^/]+)/$"),
    ok_status=204,
    gone_status=404,
    gone_body={"api_id": "00000000-0000-0000-0000-000000000000", "error": "not found"},
    is_hangup=_is_hangup,
)


def _account_id() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "MA" + "".join(secrets.choice(alphabet) for _ in range(18))


class PlivoClient(SequencedJSONClient):
    """Plivo's side of one bidirectional audio stream.

    Args:
        content_type: the ``<Stream contentType>``: ``"audio/x-mulaw;rate=8000"`` (default),
            ``"audio/x-l16;rate=8000"`` or ``"audio/x-l16;rate=16000"``.
        call_id, stream_id, account_id: fixed IDs (random UUIDs / ``MA…`` if None).
        custom_parameters: the ``<Stream extraHeaders>``, delivered as the ``extra_headers``
            string ``key=value;key=value``.
        start_timestamp_ms: Unix time in ms of the stream's start, the base of the media and
            DTMF ``timestamp`` fields (now if None).
    """

    name: ClassVar[str] = "plivo"
    packet_ms: ClassVar[int] = 20
    hangup_route: ClassVar[HangupRoute | None] = PLIVO_HANGUP_ROUTE
    echo_marks_on_clear = False
    sequence_key: ClassVar[str] = "sequenceNumber"
    stream_key: ClassVar[str] = "streamId"

    def __init__(
        self,
        *,
        content_type: str = "audio/x-mulaw;rate=8000",
        call_id: str | None = None,
        stream_id: str | None = None,
        account_id: str | None = None,
        custom_parameters: Mapping[str, Any] | None = None,
        start_timestamp_ms: int | None = None,
    ) -> None:
        fmt = _CONTENT_TYPES.get(content_type.replace(" ", "").lower())
        if fmt is None:
            raise ConfigurationError(
                f"plivo: content_type must be one of {', '.join(_CONTENT_TYPES)}, not {content_type!r}"
            )
        self.content_type = content_type
        self._format = fmt
        self._call_id = call_id or str(uuid.uuid4())
        self._stream_id = stream_id or str(uuid.uuid4())
        self.account_id = account_id or _account_id()
        self.custom_parameters = string_parameters(custom_parameters)
        self.extra_headers = ";".join(f"{k}={v}" for k, v in self.custom_parameters.items())
        self.start_timestamp_ms = start_timestamp_ms if start_timestamp_ms is not None else int(time.time() * 1000)

    # --- identity and format ----------------------------------------------------------------

    @property
    def call_id(self) -> str:
        return self._call_id

    @property
    def stream_id(self) -> str | None:
        return self._stream_id

    def url_warnings(self, url: str) -> list[str]:
        warnings = []
        if len(url) > 2048:
            warnings.append("Plivo accepts stream URLs of at most 2048 characters")
        if len(self.extra_headers.encode()) > MAX_EXTRA_HEADERS:
            warnings.append(f"Plivo's extraHeaders hold at most {MAX_EXTRA_HEADERS} bytes")
        bad = [k for k in self.custom_parameters if not k.isalnum()]
        if bad:
            warnings.append(f"Plivo's extraHeaders keys must be alphanumeric: {', '.join(bad)}")
        if any(c in v for v in self.custom_parameters.values() for c in ";,="):
            warnings.append("a custom parameter value contains ';', ',' or '=', which split Plivo's extraHeaders")
        return warnings

    # --- messages Plivo sends -----------------------------------------------------------------

    def _next_sequence(self) -> int:
        """Plivo's sequence numbers are JSON numbers."""
        self._sequence += 1
        return self._sequence

    def _timestamp(self) -> str:
        return str(self.start_timestamp_ms + int(self._media_ms))

    def opening_messages(self) -> list[Message]:
        start = {
            "event": "start",
            "sequenceNumber": self._next_sequence(),
            "start": {
                "callId": self._call_id,
                "streamId": self._stream_id,
                "accountId": self.account_id,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": _MIME[self._format.encoding], "sampleRate": self._format.sample_rate},
            },
            "extra_headers": self.extra_headers,
        }
        return [dumps(start)]

    def media_message(self, encoded: bytes) -> Message:
        timestamp = self._timestamp()
        self._advance_media(encoded)
        media = {
            "track": "inbound",
            "timestamp": timestamp,
            "chunk": self._chunk,
            "payload": base64.b64encode(encoded).decode("ascii"),
        }
        return self._message("media", media=media, extra_headers=self.extra_headers)

    def dtmf_message(self, digit: str) -> Message:
        dtmf = {"track": "inbound", "digit": digit, "timestamp": self._timestamp()}
        return self._message("dtmf", dtmf=dtmf, extra_headers=self.extra_headers)

    def mark_echo(self, name: str) -> Message:
        return self._message("playedStream", name=name)

    def clear_ack(self) -> Message | None:
        return self._message("clearedAudio")

    def stop_message(self) -> Message | None:
        return None  # Plivo just closes the socket

    # --- messages the bot sends ---------------------------------------------------------------

    def parse_server_message(self, message: Message) -> list[ServerCommand]:
        if isinstance(message, bytes | bytearray | memoryview):
            return [ProtocolViolation("binary frame: Plivo accepts only JSON text frames")]
        if len(message.encode("utf-8", "replace")) > MAX_MESSAGE_BYTES:
            return [ProtocolViolation(f"message of more than {MAX_MESSAGE_BYTES // 1024} KB (Plivo's limit); dropped")]
        data = json_object(message)
        if isinstance(data, ProtocolViolation):
            return [data]
        event = data.get("event")
        if event == "playAudio":
            return self._parse_play_audio(data.get("media"))
        if event in ("checkpoint", "clearAudio"):
            problem = self._check_stream(event, data)
            if problem is not None:
                return [problem]
            if event == "clearAudio":
                return [Clear()]
            if not isinstance(data.get("name"), str):
                return [ProtocolViolation("checkpoint without a string name")]
            return [Mark(data["name"])]
        if event == "sendDTMF":
            digits = data.get("dtmf")
            if not isinstance(digits, str) or not digits or not set(digits.upper()) <= _DTMF_DIGITS:
                return [ProtocolViolation("sendDTMF without a string of digits 0-9, *, #, A-D in dtmf")]
            return [SendDTMF(digits.upper())]
        return [
            ProtocolViolation(
                f"unknown event {str(event)[:40]!r} (Plivo accepts playAudio, checkpoint, clearAudio, sendDTMF)"
            )
        ]

    def _check_stream(self, event: str, data: dict[str, Any]) -> ProtocolViolation | None:
        stream_id = data.get("streamId")
        if stream_id is None:
            return ProtocolViolation(f"{event} without streamId")
        if stream_id != self._stream_id:
            return ProtocolViolation(f"{event} for another streamId {str(stream_id)[:40]!r}")
        return None

    def _parse_play_audio(self, media: Any) -> list[ServerCommand]:
        if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
            return [ProtocolViolation("playAudio without a string media.payload")]
        expected = _MIME[self._format.encoding]
        if media.get("contentType") != expected:
            return [
                ProtocolViolation(
                    f"playAudio contentType {str(media.get('contentType'))[:40]!r} does not match the stream's "
                    f"{expected!r}; not played"
                )
            ]
        rate = media.get("sampleRate")
        if isinstance(rate, bool) or str(rate) != str(self._format.sample_rate):
            return [
                ProtocolViolation(
                    f"playAudio sampleRate {str(rate)[:20]!r} does not match the stream's "
                    f"{self._format.sample_rate}; not played"
                )
            ]
        try:
            payload = base64.b64decode(media["payload"], validate=True)
        except (binascii.Error, ValueError):
            return [ProtocolViolation("playAudio media.payload is not valid base64")]
        commands: list[ServerCommand] = []
        if self._format.encoding == "l16" and len(payload) % 2:
            commands.append(ProtocolViolation(f"L16 playAudio payload of {len(payload)} bytes is not whole samples"))
        pcm = self.decode(payload)
        if pcm:
            commands.append(PlayAudio(pcm))
        return commands
