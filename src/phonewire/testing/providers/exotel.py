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

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from phonewire.exceptions import ConfigurationError
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

__all__ = ["ExotelClient"]

SAMPLE_RATES = (8000, 16000, 24000)
#: Outbound media chunk rules, in bytes.
CHUNK_MULTIPLE = 320
CHUNK_MAX = 100_000
#: Exotel passes at most this many custom parameters (from the stream URL's query).
MAX_CUSTOM_PARAMETERS = 3


class ExotelClient(TwilioStyleIds, JSONStreamClient):
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
    sequence_key: ClassVar[str] = "sequence_number"
    stream_key: ClassVar[str] = "stream_sid"
    display_name: ClassVar[str] = "Exotel"
    media_track: ClassVar[bool] = False
    # Exotel's example numbers chunk "2" with timestamp "200" at 100 ms per chunk: the
    # timestamp is the stream time at the end of the chunk, in ms.
    timestamp_at_end: ClassVar[bool] = True

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
        self._init_sids(account_sid, call_sid, stream_sid)
        self.from_number = from_number
        self.to_number = to_number
        self.custom_parameters = string_parameters(custom_parameters)
        self.dtmf_duration_ms = dtmf_duration_ms
        self.stop_reason = stop_reason

    # --- identity and format ----------------------------------------------------------------

    def url_warnings(self, url: str) -> list[str]:
        warnings = wss_only(url, "Exotel")
        asked = parse_qs(urlsplit(url).query).get("sample-rate")
        if asked and asked[-1] != str(self._format.sample_rate):
            warnings.append(
                f"the URL asks for sample-rate={asked[-1]} but the simulated stream runs at "
                f"{self._format.sample_rate} Hz (ExotelClient(sample_rate=...))"
            )
        if len(self.custom_parameters) > MAX_CUSTOM_PARAMETERS:
            warnings.append(f"Exotel passes at most {MAX_CUSTOM_PARAMETERS} custom parameters")
        return warnings

    # --- messages Exotel sends ----------------------------------------------------------------

    def opening_messages(self) -> list[Message]:
        start = self._message(
            "start",
            start={
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
        )
        return [dumps({"event": "connected"}), start]

    def dtmf_message(self, digit: str) -> Message:
        return self._message("dtmf", dtmf={"digit": digit, "duration": str(self.dtmf_duration_ms)})

    def stop_message(self) -> Message | None:
        stop = {"call_sid": self.call_sid, "account_sid": self.account_sid, "reason": self.stop_reason}
        return self._message("stop", stop=stop)

    # --- messages the bot sends ---------------------------------------------------------------

    def _parse_media(self, media: Any) -> list[ServerCommand]:
        payload = media_payload(media)
        if isinstance(payload, str):
            return [self._violation(payload)]
        if not payload:
            return [self._violation("media message with an empty payload")]
        commands: list[ServerCommand] = []
        if len(payload) > CHUNK_MAX:
            commands.append(self._violation(f"media chunk of {len(payload)} bytes: Exotel takes at most 100 KB"))
        tail = len(payload) % CHUNK_MULTIPLE
        if tail:
            commands.append(
                self._violation(
                    f"media chunk of {len(payload)} bytes is not a multiple of {CHUNK_MULTIPLE}: "
                    "Exotel plays the short tail as a full 20 ms packet (an audible gap)"
                )
            )
            # The tail packet still takes a whole 320-byte slot: the rest of it is silence.
            payload += bytes(CHUNK_MULTIPLE - tail)
        commands.append(PlayAudio(self.decode(payload)))
        return commands
