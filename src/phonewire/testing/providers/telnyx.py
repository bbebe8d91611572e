"""Telnyx media streaming (bidirectional RTP mode), played from Telnyx's side.

Wire facts this module keeps (developers.telnyx.com media-streaming guide and AsyncAPI page):

* every message is a JSON text frame with snake_case keys; ``stream_id`` is top level;
* ``connected`` (no sequence number, plus ``x-telnyx-streaming-auth-token`` when a stream auth
  token is configured), then ``start`` with ``sequence_number`` "1", ``stream_id`` and
  ``start.{user_id, call_control_id, call_session_id, from, to, tags, client_state,
  custom_parameters, media_format{encoding, sample_rate, channels}}``;
* ``sequence_number``, ``media.chunk`` and ``media.timestamp`` are *strings*; the sequence
  number counts every message from "1" (``start``), the chunk counts media only;
* audio is PCMU/PCMA at 8 kHz or L16 at 8/16 kHz: ``stream_codec`` for what Telnyx sends,
  ``stream_bidirectional_codec`` for what it expects back (usually the same). L16 byte order is
  not stated by Telnyx: RTP payloads are network (big-endian) order, which is what our
  serializer assumes by default;
* the bot sends ``media`` (20 ms to 30 s of raw codec bytes per message), ``mark`` and
  ``clear``; a mark is echoed once the audio before it has played, ``clear`` drops queued
  audio and echoes every pending mark; ``dtmf`` carries ``occurred_at`` (ISO 8601); ``stop``
  ends the stream. Errors are ``100003 malformed_frame`` and ``100004 invalid_media``.

Telnyx says media ordering is not guaranteed. Out-of-order delivery is not modelled here but by
the simulator's network (``NetworkConditions(reorder=…)``, ``phonewire call --reorder P``), which
can swap any provider's media.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from phonewire.audio.codecs import Codec, codec_for
from phonewire.exceptions import ConfigurationError
from phonewire.testing.providers.base import (
    HangupRoute,
    JSONStreamClient,
    MediaFormat,
    Message,
    PlayAudio,
    ServerCommand,
    dumps,
    lenient_decode,
    media_payload,
    string_parameters,
    wss_only,
)

__all__ = ["TELNYX_HANGUP_ROUTE", "TelnyxClient"]

MALFORMED_FRAME = 100003
INVALID_MEDIA = 100004
#: A media message from the bot may carry 20 ms to 30 s of audio (RTP mode).
MIN_MEDIA_MS = 20
MAX_MEDIA_MS = 30_000

_CODECS = {"PCMU": "mulaw", "PCMA": "alaw", "L16": "l16"}


def _is_hangup(form: Mapping[str, str], body: Any) -> bool:
    return True  # every POST to .../actions/hangup ends the call


def _command_result(match: re.Match[str]) -> dict[str, Any]:
    return {"data": {"result": "ok"}}


TELNYX_HANGUP_ROUTE = HangupRoute(
    method="POST",
    path=re.compile(r"^/v2/calls/(?P<call_id>[^/]+)/actions/hangup$"),
    ok_status=200,
    gone_status=422,
    gone_body={
        "errors": [
            {
                "code": "90018",
                "title": "Call has already ended",
                "detail": "This call is no longer active and can't receive commands.",
            }
        ]
    },
    is_hangup=_is_hangup,
    ok_body=_command_result,
)


class TelnyxClient(JSONStreamClient):
    """Telnyx's side of one bidirectional (RTP mode) media stream.

    Args:
        codec: ``"PCMU"`` (default), ``"PCMA"`` or ``"L16"``: the ``stream_codec`` of the
            caller's audio, declared in ``start.media_format``.
        bidirectional_codec: the ``stream_bidirectional_codec`` the bot must send (default:
            ``codec``). Only PCMU and PCMA may be mixed; L16 is L16 both ways.
        sample_rate: 8000, or 16000 for L16 (default: 8000, or 16000 for L16).
        l16_byte_order: L16 byte order on the wire, ``"big"`` (RTP order, our serializer's
            default) or ``"little"``.
        stream_id, call_control_id, user_id, call_session_id: fixed IDs (random if None).
        from_number, to_number: the ``start.from``/``start.to`` numbers.
        custom_parameters: delivered in ``start.custom_parameters`` (as strings).
        client_state: ``start.client_state`` (base64 text), if any.
        stream_auth_token: sent as the ``x-telnyx-streaming-auth-token`` upgrade header and
            in the ``connected`` message, as Telnyx does when ``stream_auth_token`` is set.
        started_at: wall-clock time of the stream's start, the base of DTMF ``occurred_at``
            (now if None).
    """

    name: ClassVar[str] = "telnyx"
    packet_ms: ClassVar[int] = 20
    hangup_route: ClassVar[HangupRoute | None] = TELNYX_HANGUP_ROUTE
    sequence_key: ClassVar[str] = "sequence_number"
    stream_key: ClassVar[str] = "stream_id"
    display_name: ClassVar[str] = "Telnyx"
    error_code: ClassVar[int | None] = MALFORMED_FRAME
    stream_key_required: ClassVar[bool] = False

    def __init__(
        self,
        *,
        codec: str = "PCMU",
        bidirectional_codec: str | None = None,
        sample_rate: int | None = None,
        l16_byte_order: Literal["big", "little"] = "big",
        stream_id: str | None = None,
        call_control_id: str | None = None,
        user_id: str | None = None,
        call_session_id: str | None = None,
        from_number: str = "+13125550100",
        to_number: str = "+13125550199",
        custom_parameters: Mapping[str, Any] | None = None,
        client_state: str | None = None,
        stream_auth_token: str | None = None,
        started_at: datetime | None = None,
    ) -> None:
        codec = codec.upper()
        if codec not in _CODECS:
            raise ConfigurationError(f"telnyx: codec must be PCMU, PCMA or L16, not {codec!r}")
        encoding = _CODECS[codec]
        rate = sample_rate or (16000 if encoding == "l16" else 8000)
        if encoding == "l16" and rate not in (8000, 16000):
            raise ConfigurationError(f"telnyx: L16 is 8000 or 16000 Hz, not {rate}")
        if encoding != "l16" and rate != 8000:
            raise ConfigurationError(f"telnyx: {codec} is 8000 Hz only, not {rate}")
        if l16_byte_order not in ("big", "little"):
            raise ConfigurationError("telnyx: l16_byte_order must be 'big' or 'little'")
        back = (bidirectional_codec or codec).upper()
        if back not in _CODECS or (back == "L16") != (codec == "L16"):
            raise ConfigurationError(
                f"telnyx: bidirectional_codec {back!r} with codec {codec!r}: only PCMU and PCMA mix, "
                "L16 is L16 both ways"
            )
        self.codec = codec
        self.bidirectional_codec = back
        self._bot_format = MediaFormat(_CODECS[back], rate, 1)
        self.l16_byte_order = l16_byte_order
        self._format = MediaFormat(encoding, rate, 1)
        self._stream_id = stream_id or str(uuid.uuid4()).upper()
        self.call_control_id = call_control_id or "v3:" + secrets.token_urlsafe(24)
        self.user_id = user_id or str(uuid.uuid4())
        self.call_session_id = call_session_id or str(uuid.uuid4())
        self.from_number = from_number
        self.to_number = to_number
        self.custom_parameters = string_parameters(custom_parameters)
        self.client_state = client_state
        self.stream_auth_token = stream_auth_token
        self.started_at = started_at or datetime.now(UTC)
        self._last_dtmf_at: datetime | None = None

    # --- identity and format ----------------------------------------------------------------

    @property
    def call_id(self) -> str:
        return self.call_control_id

    @property
    def stream_id(self) -> str | None:
        return self._stream_id

    def upgrade_headers(self, url: str) -> dict[str, str]:
        if self.stream_auth_token is None:
            return {}
        return {"x-telnyx-streaming-auth-token": self.stream_auth_token}

    def url_warnings(self, url: str) -> list[str]:
        return wss_only(url, "Telnyx")

    # --- messages Telnyx sends ----------------------------------------------------------------

    def opening_messages(self) -> list[Message]:
        connected: dict[str, Any] = {"event": "connected", "version": "1.0.0"}
        if self.stream_auth_token is not None:
            connected["x-telnyx-streaming-auth-token"] = self.stream_auth_token
        start: dict[str, Any] = {
            "user_id": self.user_id,
            "call_control_id": self.call_control_id,
            "call_session_id": self.call_session_id,
            "from": self.from_number,
            "to": self.to_number,
            "tags": [],
            "custom_parameters": dict(self.custom_parameters),
            "media_format": {"encoding": self.codec, "sample_rate": self._format.sample_rate, "channels": 1},
        }
        if self.client_state is not None:
            start["client_state"] = self.client_state
        return [dumps(connected), self._message("start", start=start)]

    def _occurred_at(self) -> str:
        at = self.started_at + timedelta(milliseconds=self._media_ms)
        if self._last_dtmf_at is not None and at <= self._last_dtmf_at:
            # Telnyx de-duplicates on (occurred_at, digit): two presses are never simultaneous.
            at = self._last_dtmf_at + timedelta(microseconds=1)
        self._last_dtmf_at = at
        return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def dtmf_message(self, digit: str) -> Message:
        return self._message("dtmf", occurred_at=self._occurred_at(), dtmf={"digit": digit})

    def stop_message(self) -> Message | None:
        return self._message("stop", stop={"user_id": self.user_id, "call_control_id": self.call_control_id})

    # --- messages the bot sends ---------------------------------------------------------------

    def _parse_media(self, media: Any) -> list[ServerCommand]:
        payload = media_payload(media)
        if isinstance(payload, str):
            code = INVALID_MEDIA if "base64" in payload else MALFORMED_FRAME
            return [self._violation(payload, code)]
        commands: list[ServerCommand] = []
        fmt = self._bot_format
        if len(payload) % fmt.bytes_per_sample:
            commands.append(
                self._violation(f"L16 media payload of {len(payload)} bytes is not whole samples", INVALID_MEDIA)
            )
        ms = len(payload) // fmt.bytes_per_sample * 1000 / fmt.sample_rate
        if not MIN_MEDIA_MS <= ms <= MAX_MEDIA_MS:
            commands.append(
                self._violation(f"media payload of {ms:g} ms (Telnyx takes {MIN_MEDIA_MS} ms to 30 s per message)")
            )
        pcm = lenient_decode(codec_for(fmt.encoding, byte_order=self.l16_byte_order), payload)
        if pcm:
            commands.append(PlayAudio(pcm))
        return commands

    # --- codec ------------------------------------------------------------------------------

    @property
    def wire_codec(self) -> Codec:
        """The caller's direction (``codec``); the bot's media is decoded with ``bidirectional_codec``."""
        return codec_for(self._format.encoding, byte_order=self.l16_byte_order)
