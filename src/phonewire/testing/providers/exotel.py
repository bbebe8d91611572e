"""Exotel AgentStream, the Voicebot (bidirectional) applet, played from Exotel's side.

Wire facts this module keeps (developer.exotel.com/docs/agentstream/websocket-protocol):

* JSON text frames both ways, snake_case, and every number is a *string* (``sequence_number``,
  ``chunk``, ``timestamp``, ``sample_rate``, ``bit_rate``, ``duration``);
* ``connected`` (just the event), then ``start`` with ``sequence_number`` "1", ``stream_sid``
  and ``start.{stream_sid, call_sid, account_sid, from, to, custom_parameters,
  media_format{encoding "audio/x-raw", sample_rate, bit_rate "16"}}``;
* audio is base64 16-bit signed little-endian mono PCM at 8000 Hz (16000 or 24000 when the
  stream URL asks with ``?sample-rate=``), inbound in messages of about **100 ms**;
* the bot sends ``media`` (chunks that must be multiples of 320 bytes, 3.2 KB to 100 KB: a
  chunk that is not a multiple leaves a short tail, and Exotel still waits a full 20 ms for it,
  which the caller hears as a gap), ``mark`` (echoed once the audio before it has played) and
  ``clear``; ``dtmf`` carries a ``duration``; ``stop`` has ``reason`` ``callended`` (the
  caller hung up) or ``stopped`` (the applet ended);
* there is no REST hang-up for a stream: the call ends when the flow moves on.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from phonewire.exceptions import ConfigurationError
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

__all__ = ["ExotelClient"]

SAMPLE_RATES = (8000, 16000, 24000)
#: Outbound media chunk rules, in bytes.
CHUNK_MULTIPLE = 320
CHUNK_MAX = 100_000
#: Exotel passes at most this many custom parameters (from the stream URL's query).
MAX_CUSTOM_PARAMETERS = 3


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class ExotelClient(ProviderClient):
    """Exotel's side of one Voicebot applet stream.

    Args:
        sample_rate: 8000 (default), 16000 or 24000 Hz.
        stream_sid, call_sid, account_sid: fixed IDs (random if None).
        from_number, to_number: the ``start.from``/``start.to`` numbers.
        custom_parameters: delivered in ``start.custom_parameters`` (as strings; Exotel takes
            them from the stream URL's query, at most 3).
        dtmf_duration_ms: the ``dtmf.duration`` of each key press.
        stop_reason: ``stop.reason`` when the caller hangs up (``callended``).
    """

    name: ClassVar[str] = "exotel"
    packet_ms: ClassVar[int] = 100
    hangup_route: ClassVar[HangupRoute | None] = None

    def __init__(
        self,
        *,
        sample_rate: int = 8000,
        stream_sid: str | None = None,
        call_sid: str | None = None,
        account_sid: str | None = None,
        from_number: str = "+919800000001",
        to_number: str = "+918000000002",
        custom_parameters: Mapping[str, Any] | None = None,
        dtmf_duration_ms: int = 100,
        stop_reason: str = "callended",
    ) -> None:
        if sample_rate not in SAMPLE_RATES:
            raise ConfigurationError(f"exotel: sample_rate must be 8000, 16000 or 24000, not {sample_rate}")
        self._format = MediaFormat("l16", sample_rate, 1)
        self.stream_sid = stream_sid or _sid("MZ")
        self.call_sid = call_sid or _sid("CA")
        self.account_sid = account_sid or _sid("AC")
        self.from_number = from_number
        self.to_number = to_number
        self.custom_parameters = {str(k): str(v) for k, v in (custom_parameters or {}).items()}
        self.dtmf_duration_ms = dtmf_duration_ms
        self.stop_reason = stop_reason
        self._sequence = 0
        self._chunk = 0
        self._media_ms = 0.0

    # --- identity and format ----------------------------------------------------------------

    @property
    def call_id(self) -> str:
        return self.call_sid

    @property
    def stream_id(self) -> str | None:
        return self.stream_sid

    def url_warnings(self, url: str) -> list[str]:
        parts = urlsplit(url)
        warnings = []
        if parts.scheme not in ("wss", "ws"):
            warnings.append(f"Exotel streams only to wss:// URLs, not {parts.scheme}://")
        asked = parse_qs(parts.query).get("sample-rate")
        if asked and asked[-1] != str(self._format.sample_rate):
            warnings.append(
                f"the URL asks for sample-rate={asked[-1]} but the simulated stream runs at "
                f"{self._format.sample_rate} Hz (ExotelClient(sample_rate=...))"
            )
        if len(self.custom_parameters) > MAX_CUSTOM_PARAMETERS:
            warnings.append(f"Exotel passes at most {MAX_CUSTOM_PARAMETERS} custom parameters")
        return warnings

    # --- messages Exotel sends ----------------------------------------------------------------

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def opening_messages(self) -> list[Message]:
        start = {
            "event": "start",
            "sequence_number": self._next_sequence(),
            "stream_sid": self.stream_sid,
            "start": {
                "stream_sid": self.stream_sid,
                "call_sid": self.call_sid,
                "account_sid": self.account_sid,
                "from": self.from_number,
                "to": self.to_number,
                "custom_parameters": dict(self.custom_parameters),
                "media_format": {
                    "encoding": "audio/x-raw",
                    "sample_rate": str(self._format.sample_rate),
                    "bit_rate": "16",
                },
            },
        }
        return [_dumps({"event": "connected"}), _dumps(start)]

    def media_message(self, encoded: bytes) -> Message:
        self._chunk += 1
        # Exotel's example numbers chunk "2" with timestamp "200" at 100 ms per chunk: the
        # timestamp is the stream time at the end of the chunk, in ms.
        self._media_ms += len(encoded) / 2 * 1000 / self._format.sample_rate
        return _dumps(
            {
                "event": "media",
                "sequence_number": self._next_sequence(),
                "stream_sid": self.stream_sid,
                "media": {
                    "chunk": str(self._chunk),
                    "timestamp": str(int(self._media_ms)),
                    "payload": base64.b64encode(encoded).decode("ascii"),
                },
            }
        )

    def dtmf_message(self, digit: str) -> Message:
        return _dumps(
            {
                "event": "dtmf",
                "sequence_number": self._next_sequence(),
                "stream_sid": self.stream_sid,
                "dtmf": {"digit": digit, "duration": str(self.dtmf_duration_ms)},
            }
        )

    def mark_echo(self, name: str) -> Message:
        return _dumps(
            {
                "event": "mark",
                "sequence_number": self._next_sequence(),
                "stream_sid": self.stream_sid,
                "mark": {"name": name},
            }
        )

    def stop_message(self) -> Message | None:
        return _dumps(
            {
                "event": "stop",
                "sequence_number": self._next_sequence(),
                "stream_sid": self.stream_sid,
                "stop": {"call_sid": self.call_sid, "account_sid": self.account_sid, "reason": self.stop_reason},
            }
        )

    # --- messages the bot sends ---------------------------------------------------------------

    def parse_server_message(self, message: Message) -> list[ServerCommand]:
        data = json_text_frame(message, "Exotel")
        if isinstance(data, ProtocolViolation):
            return [data]
        event = data.get("event")
        if event not in ("media", "mark", "clear"):
            return [ProtocolViolation(f"unknown event {str(event)[:40]!r} (Exotel accepts media, mark, clear)")]
        stream_sid = data.get("stream_sid")
        if stream_sid is None:
            return [ProtocolViolation(f"{event} message without stream_sid")]
        if stream_sid != self.stream_sid:
            return [ProtocolViolation(f"{event} message for another stream_sid {str(stream_sid)[:40]!r}")]
        if event == "media":
            return self._parse_media(data.get("media"))
        if event == "mark":
            return mark_command(data.get("mark"))
        return [Clear()]

    def _parse_media(self, media: Any) -> list[ServerCommand]:
        payload = media_payload(media)
        if isinstance(payload, str):
            return [ProtocolViolation(payload)]
        if not payload:
            return [ProtocolViolation("media message with an empty payload")]
        commands: list[ServerCommand] = []
        if len(payload) > CHUNK_MAX:
            commands.append(ProtocolViolation(f"media chunk of {len(payload)} bytes: Exotel takes at most 100 KB"))
        tail = len(payload) % CHUNK_MULTIPLE
        if tail:
            commands.append(
                ProtocolViolation(
                    f"media chunk of {len(payload)} bytes is not a multiple of {CHUNK_MULTIPLE}: "
                    "Exotel plays the short tail as a full 20 ms packet (an audible gap)"
                )
            )
            # The tail packet still takes a whole 320-byte slot: the rest of it is silence.
            payload += bytes(CHUNK_MULTIPLE - tail)
        commands.append(PlayAudio(self.decode(payload)))
        return commands

    # --- codec ------------------------------------------------------------------------------

    def encode(self, pcm: bytes) -> bytes:
        return bytes(pcm[: len(pcm) // 2 * 2])

    def decode(self, payload: bytes) -> bytes:
        return bytes(payload[: len(payload) // 2 * 2])
