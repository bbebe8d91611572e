"""phonewire's raw-PCM protocol (docs/raw-pcm.md), played from the client's side.

Wire facts this module keeps:

* binary frames carry 16-bit signed little-endian mono PCM at the stream's rate, both ways,
  with no header; the server sends 20 ms packets;
* JSON text frames are control messages shaped ``{"event": …}``, all optional. The client may
  open with ``{"event": "start", "call_id", "sample_rate", "custom_parameters"}``, and sends
  ``dtmf`` (``digit``), ``mark`` echoes, ``cleared`` and ``stop``;
* the server sends ``mark`` (echo it once the audio before it has played), ``clear`` (drop the
  queued audio, echo every pending mark, then optionally ``{"event": "cleared"}``), ``dtmf``
  (``digits`` to play into the call) and ``message`` (application data).

There is no hang-up API: the server ends the stream by closing the WebSocket.
"""

from __future__ import annotations

import secrets
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
    ProviderClient,
    SendDTMF,
    ServerCommand,
    dumps,
    json_object,
)

__all__ = ["RawPCMClient"]

SAMPLE_RATES = (8000, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000)
_DTMF_DIGITS = frozenset("0123456789*#ABCD")


class RawPCMClient(ProviderClient):
    """A raw-PCM client: a browser page, a SIP gateway, a load generator.

    Args:
        sample_rate: the stream's rate (default 16000), declared in ``start``.
        call_id: the ``start.call_id`` (random ``sim-…`` if None).
        custom_parameters: ``start.custom_parameters`` (JSON values kept as they are).
        send_start: open with the JSON ``start`` (default). Without it the stream opens
            with audio and the server uses its configured rate; note that an
            auto-detecting route then takes 20 ms binary frames for Vonage, so point such a
            client at a route pinned to ``raw_pcm``.
        stop_reason: the ``stop.reason`` sent when the caller hangs up.
    """

    name: ClassVar[str] = "raw_pcm"
    packet_ms: ClassVar[int] = 20
    hangup_route: ClassVar[HangupRoute | None] = None

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        call_id: str | None = None,
        custom_parameters: Mapping[str, Any] | None = None,
        send_start: bool = True,
        stop_reason: str = "hangup",
    ) -> None:
        if sample_rate not in SAMPLE_RATES:
            raise ConfigurationError(f"raw_pcm: sample_rate must be one of {SAMPLE_RATES}, not {sample_rate}")
        self._format = MediaFormat("l16", sample_rate, 1)
        self._call_id = call_id or "sim-" + secrets.token_hex(8)
        self.custom_parameters = {str(k): v for k, v in (custom_parameters or {}).items()}
        self.send_start = send_start
        self.stop_reason = stop_reason

    # --- identity and format ----------------------------------------------------------------

    @property
    def call_id(self) -> str:
        return self._call_id

    # --- messages the client sends ------------------------------------------------------------

    def opening_messages(self) -> list[Message]:
        if not self.send_start:
            return []
        start = {
            "event": "start",
            "call_id": self._call_id,
            "sample_rate": self._format.sample_rate,
            "custom_parameters": dict(self.custom_parameters),
        }
        return [dumps(start)]

    def media_message(self, encoded: bytes) -> Message:
        return bytes(encoded)

    def dtmf_message(self, digit: str) -> Message:
        return dumps({"event": "dtmf", "digit": digit})

    def mark_echo(self, name: str) -> Message:
        return dumps({"event": "mark", "name": name})

    def clear_ack(self) -> Message | None:
        return dumps({"event": "cleared"})

    def stop_message(self) -> Message | None:
        return dumps({"event": "stop", "reason": self.stop_reason})

    # --- messages the server sends ------------------------------------------------------------

    def parse_server_message(self, message: Message) -> list[ServerCommand]:
        if isinstance(message, bytes | bytearray | memoryview):
            audio = bytes(message)
            if len(audio) % 2:
                return [ProtocolViolation(f"odd-length audio frame ({len(audio)} bytes); dropped")]
            return [PlayAudio(audio)] if audio else []
        data = json_object(message)
        if isinstance(data, ProtocolViolation):
            return [data]
        event = data.get("event")
        if event == "mark":
            if not isinstance(data.get("name"), str):
                return [ProtocolViolation("mark without a string name")]
            return [Mark(data["name"])]
        if event == "clear":
            return [Clear()]
        if event == "dtmf":
            digits = data.get("digits")
            if not isinstance(digits, str) or not digits or not set(digits) <= _DTMF_DIGITS:
                return [ProtocolViolation("dtmf without a string of digits 0-9, *, #, A-D in digits")]
            return [SendDTMF(digits)]
        if event == "message":
            return []  # application data for the client; nothing to play
        return [ProtocolViolation(f"unknown event {str(event)[:40]!r} (mark, clear, dtmf, message)")]
