"""Exotel AgentStream: the Voicebot (bidirectional) and Stream (one-way) applets.

Wire facts this module relies on (developer.exotel.com/docs/agentstream/websocket-protocol):
every message is a JSON text frame in snake_case and every number in it is a *string*
(``sequence_number``, ``chunk``, ``timestamp``, ``sample_rate``, ``duration``); audio is base64
16-bit signed little-endian mono PCM ("audio/x-raw") at 8000 Hz by default, 16000 or 24000 Hz
when the stream URL asks for it, and arrives about every 100 ms. The Beta extension guide also
offers μ-law 8 kHz ("audio/x-mulaw"), accepted here when ``start.media_format`` declares it.
Outbound ``media`` chunks must be multiples of 320 bytes, at least 3200 bytes and at most 100 KB;
a ``mark`` we send is echoed once the audio before it has played; ``clear`` drops queued audio.
``stop.reason`` is ``stopped`` (the applet ended) or ``callended`` (the caller hung up). There is
no REST hang-up for a stream: the call ends when the flow moves past the applet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from phonewire.exceptions import CodecError, ConfigurationError, RemoteProtocolError
from phonewire.frames import Frame, InputAudioRawFrame, InputDTMFFrame
from phonewire.serializers._json_stream import INBOUND_TRACKS, JSONStreamSerializer
from phonewire.serializers._values import (
    b64decode,
    b64encode,
    count,
    field,
    keypad,
    media_type,
    preview,
    text,
    text_params,
)
from phonewire.serializers.base import (
    CallInfo,
    MediaFormat,
    Message,
    OneFormat,
    PacketPolicy,
    SerializerEvent,
)

__all__ = ["ExotelFrameSerializer", "parse_exotel_start"]

PROVIDER = "exotel"
DEFAULT_FORMAT = MediaFormat("l16", 8000, 1)
#: Rates the stream URL's ``sample-rate`` query parameter may select, per encoding.
SUPPORTED_RATES = {"l16": (8000, 16000, 24000), "mulaw": (8000,)}
_ENCODINGS = {"audio/x-raw": "l16", "audio/l16": "l16", "slin": "l16", "audio/x-mulaw": "mulaw"}
_BITS = {"l16": 16, "mulaw": 8}

# Exotel's outbound chunk rules, in bytes (see ``packet_policy`` for the arithmetic).
CHUNK_MULTIPLE = 320
CHUNK_MIN = 3200
CHUNK_MAX = 100_000 // CHUNK_MULTIPLE * CHUNK_MULTIPLE  # 99 840 B: "100 KB" read conservatively
_OUTBOUND_EVENTS = frozenset({"media", "mark", "clear"})


def parse_exotel_start(msg: dict[str, Any]) -> CallInfo:
    """Turn Exotel's ``start`` message into a CallInfo (raises RemoteProtocolError)."""
    start = field(msg, "start", dict, PROVIDER)
    stream_sid = text(start, "stream_sid", PROVIDER) or text(msg, "stream_sid", PROVIDER)
    if not stream_sid:
        raise RemoteProtocolError("exotel: start without stream_sid")
    return CallInfo(
        provider=PROVIDER,
        call_id=text(start, "call_sid", PROVIDER),
        stream_id=stream_sid,
        media_format=exotel_media_format(start.get("media_format")),
        account_id=text(start, "account_sid", PROVIDER),
        from_number=text(start, "from", PROVIDER),
        to_number=text(start, "to", PROVIDER),
        custom_parameters=_custom_parameters(start.get("custom_parameters")),
        start_message=msg,
    )


def _custom_parameters(raw: Any) -> dict[str, str]:
    # Documented as an object; a query-string spelling ("k1=v1&k2=v2") is accepted defensively
    # because the values come from the stream URL's query.
    if isinstance(raw, str):
        return dict(parse_qsl(raw, keep_blank_values=True))
    return text_params(raw, PROVIDER)


def exotel_media_format(fmt: Any) -> MediaFormat:
    """``start.media_format`` -> MediaFormat; absent means the documented default (PCM 8 kHz)."""
    if fmt is None:
        return DEFAULT_FORMAT
    if not isinstance(fmt, dict):
        raise RemoteProtocolError("exotel: media_format is not an object")
    declared = fmt.get("encoding", "audio/x-raw")
    if not isinstance(declared, str):
        raise RemoteProtocolError("exotel: media_format.encoding is not a string")
    mime, type_params = media_type(declared)
    encoding = _ENCODINGS.get(mime)
    if encoding is None:
        raise RemoteProtocolError(f"exotel: unsupported encoding {preview(declared, 24)}")
    rate_field = fmt.get("sample_rate")
    if rate_field is None:
        rate_field = type_params.get("rate", "8000")
    rate = count(rate_field)
    if rate not in SUPPORTED_RATES[encoding]:
        raise RemoteProtocolError(f"exotel: unsupported sample_rate {preview(rate_field)} for {encoding}")
    bits = fmt.get("bit_rate")  # Exotel's name for bits per sample
    if bits is not None and count(bits) != _BITS[encoding]:
        raise RemoteProtocolError(f"exotel: unsupported bit_rate {preview(bits)} for {encoding}")
    if fmt.get("channels", 1) not in (1, "1"):
        raise RemoteProtocolError("exotel: only mono streams are supported")
    return MediaFormat(encoding, rate, 1)


class ExotelFrameSerializer(OneFormat, JSONStreamSerializer):
    """Serializer for one Exotel Voicebot (or Stream) applet session.

    Args:
        stream_sid: the stream's ``stream_sid`` from the ``start`` message.
        call_sid: the call's ``call_sid`` (informational; Exotel has no hang-up API for streams).
        params: ``ExotelFrameSerializer.InputParams``.
        media_format: the wire format from ``CallInfo.media_format``; defaults to PCM at
            ``params.exotel_sample_rate``. A ``start`` message seen later wins over both.
    """

    provider: ClassVar[str] = PROVIDER
    supports_playback_acks: ClassVar[bool] = True
    supports_dtmf_out: ClassVar[bool] = False
    stream_key: ClassVar[str] = "stream_sid"
    _outbound_events: ClassVar[frozenset[str]] = _OUTBOUND_EVENTS

    @dataclass(frozen=True, slots=True, kw_only=True)
    class InputParams:
        #: Wire rate when no media_format is given: 8000 (default), 16000 or 24000.
        exotel_sample_rate: int = 8000
        #: Pipeline input rate override, kept for code written against Pipecat; the
        #: transport's ``audio_in_sample_rate`` is the preferred knob.
        sample_rate: int | None = None

    def __init__(
        self,
        stream_sid: str,
        call_sid: str | None = None,
        params: InputParams | None = None,
        *,
        media_format: MediaFormat | None = None,
    ) -> None:
        self.params = params or self.InputParams()
        fmt = media_format or MediaFormat("l16", self.params.exotel_sample_rate, 1)
        if fmt.channels != 1 or fmt.sample_rate not in SUPPORTED_RATES.get(fmt.encoding, ()):
            raise ConfigurationError(f"Exotel streams carry PCM at 8/16/24 kHz or μ-law at 8 kHz, not {fmt}")
        self.stream_sid = self._stream = stream_sid
        self.call_sid = call_sid
        self._format = fmt
        self._prefix = self._media_prefix()
        self.started = False

    def __repr__(self) -> str:
        sids = f"stream_sid={self.stream_sid!r}, call_sid={self.call_sid!r}"
        return f"ExotelFrameSerializer({sids}, format={self._format})"

    @property
    def packet_policy(self) -> PacketPolicy:
        # Exotel states its chunk rules in bytes: a multiple of 320 B, at least 3200 B ("100 ms"),
        # at most 100 KB. 320 B is 20 ms of 16-bit PCM at 8 kHz, but 3200 B is 100 ms only at
        # 16 kHz: at the default 8 kHz it is 200 ms. We aim for 100 ms of audio, round up to a
        # multiple of 320 B and never go under 3200 B:
        #   PCM  8 kHz: 1600 B -> 3200 B (200 ms)   PCM 16 kHz: 3200 B (100 ms)
        #   PCM 24 kHz: 4800 B (100 ms)             μ-law 8 kHz: 800 B -> 3200 B (400 ms)
        # The last chunk of an utterance is padded with silence to a multiple of 320 B only; it can
        # be shorter than 3200 B, which matters little as nothing follows it until the next turn.
        wanted = self._format.bytes_for_ms(100)
        rounded = -(-wanted // CHUNK_MULTIPLE) * CHUNK_MULTIPLE
        return PacketPolicy(packet_bytes=max(CHUNK_MIN, rounded), multiple_of=CHUNK_MULTIPLE)

    # --- inbound -----------------------------------------------------------------------

    def _on_start(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        started = self._accept_start(parse_exotel_start(msg))
        self._format = started.info.media_format  # the call's own declaration is the truth
        if started.info.call_id and not self.call_sid:
            self.call_sid = started.info.call_id
        return [started]

    def _on_media(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        self._check_stream(msg)
        media = field(msg, "media", dict, PROVIDER)
        if media.get("track", "inbound") not in INBOUND_TRACKS:
            return []  # the Beta guide's "both" tracks mode also streams our own audio back
        payload = b64decode(media.get("payload"), PROVIDER)
        if not payload:
            return []
        try:
            pcm = self._format.codec.decode(payload)
        except CodecError as exc:
            raise CodecError(f"exotel: {exc}") from None
        return [InputAudioRawFrame(audio=pcm, sample_rate=self._format.sample_rate)]

    def _on_dtmf(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        self._check_stream(msg)
        dtmf = field(msg, "dtmf", dict, PROVIDER)
        # A digit with an unreadable duration is still a key press: keep it, drop the duration.
        return [InputDTMFFrame(button=keypad(dtmf.get("digit"), PROVIDER), duration_ms=count(dtmf.get("duration")))]

    def _stop_reason(self, msg: dict[str, Any]) -> str:
        stop = msg.get("stop")
        reason = stop.get("reason") if isinstance(stop, dict) else None
        return reason if isinstance(reason, str) else "stop"

    # --- outbound ----------------------------------------------------------------------

    def encode_audio(self, pcm: bytes) -> list[Message]:
        return self.encode_raw_audio(self._format.codec.encode(pcm))

    def encode_raw_audio(self, payload: bytes) -> list[Message]:
        # One packet from the packetizer is far below the cap; only pre-encoded blobs are split.
        return [self._prefix + b64encode(payload[i : i + CHUNK_MAX]) + '"}}' for i in range(0, len(payload), CHUNK_MAX)]

    # --- hang-up -----------------------------------------------------------------------

    @property
    def hangup_skip_reason(self) -> str | None:
        return (
            "Exotel has no REST hang-up for a stream: the call ends when the flow moves on "
            "(put a Hangup applet after the Voicebot applet)"
        )
