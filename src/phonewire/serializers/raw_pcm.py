"""A minimal raw-PCM protocol for browsers, SIP gateways and custom clients (docs/raw-pcm.md).

Binary frames carry 16-bit signed little-endian mono PCM at the stream's rate, both ways
(inbound: any whole number of samples; outbound: 20 ms packets). JSON text frames are optional
control messages, all shaped ``{"event": …}``:

* client → server: ``start`` (optional, first), ``dtmf``, ``mark`` (echo of ours), ``cleared``,
  ``stop``, ``message`` (an application message for the bot);
* server → client: ``mark``, ``clear``, ``dtmf``, ``message``.

Two foreign first frames also start a stream, so the same endpoint serves SIP gateways:
jambonz ``listen`` (a JSON object of call attributes with ``callSid``/``sampleRate``/``mixType``)
and FreeSWITCH ``mod_audio_stream`` (an optional metadata text frame, JSON or not). Such streams
speak no phonewire control messages back: marks and outbound DTMF are switched off for them.
A binary first frame starts the stream with the configured defaults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from phonewire.exceptions import ConfigurationError, LocalProtocolError, RemoteProtocolError
from phonewire.frames import Frame, InputAudioRawFrame, InputDTMFFrame, InputTransportMessageFrame, KeypadEntry
from phonewire.serializers._values import count, keypad, preview, text, text_params
from phonewire.serializers.base import (
    CallInfo,
    ClearAcknowledged,
    FrameSerializer,
    MediaFormat,
    Message,
    PacketPolicy,
    PlaybackMarkReached,
    SerializerEvent,
    StreamStarted,
    StreamStopped,
)

__all__ = ["RawPCMSerializer", "parse_raw_pcm_start"]

PROVIDER = "raw_pcm"
SUPPORTED_RATES = (8000, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000)
#: Who is on the other end, decided by the first message.
PHONEWIRE, JAMBONZ, METADATA = "phonewire", "jambonz", "metadata"
_JAMBONZ_KEYS = ("callSid", "sampleRate", "mixType")
_RATE_KEYS = ("sample_rate", "sampleRate")
_CALL_ID_KEYS = ("call_id", "callSid", "call_sid", "uuid")
_NOT_PARAMS = frozenset({"event", "sample_rate", "sampleRate", "mixType", "channels"})
_DTMF_OUT = frozenset(k.value for k in KeypadEntry)


def parse_raw_pcm_start(msg: dict[str, Any] | str | None = None, *, sample_rate: int = 16000) -> CallInfo:
    """CallInfo from a stream's first message (raises RemoteProtocolError).

    ``msg`` is a phonewire ``start`` object, a jambonz/FreeSWITCH metadata object, a non-JSON
    metadata text, or None when the stream opened with audio. ``sample_rate`` is the rate used
    when the message does not declare one.
    """
    if msg is None:
        return CallInfo(PROVIDER, None, None, MediaFormat("l16", sample_rate, 1))
    if isinstance(msg, str):
        return CallInfo(PROVIDER, None, None, MediaFormat("l16", sample_rate, 1), custom_parameters={"metadata": msg})
    if msg.get("event") == "start":
        custom = text_params(msg.get("custom_parameters"), PROVIDER)
    else:  # foreign metadata: every other top-level field is a parameter, plus a nested "metadata"
        custom = text_params(msg, PROVIDER, skip=_NOT_PARAMS)
        if isinstance(msg.get("metadata"), dict):
            custom = {**text_params(msg["metadata"], PROVIDER), **custom}
    return CallInfo(
        provider=PROVIDER,
        call_id=next((text(msg, k, PROVIDER) for k in _CALL_ID_KEYS if msg.get(k) is not None), None),
        stream_id=text(msg, "stream_id", PROVIDER),
        media_format=MediaFormat("l16", _declared_rate(msg, sample_rate), 1),
        account_id=text(msg, "accountSid", PROVIDER) or text(msg, "account_sid", PROVIDER),
        from_number=text(msg, "from", PROVIDER),
        to_number=text(msg, "to", PROVIDER),
        custom_parameters=custom,
        start_message=msg,
    )


def _declared_rate(msg: dict[str, Any], default: int) -> int:
    if msg.get("mixType", "mono") not in ("mono", "mixed") or msg.get("channels", 1) not in (1, "1"):
        raise RemoteProtocolError("raw_pcm: only mono streams are supported (jambonz: mixType mono or mixed)")
    declared = next((msg[k] for k in _RATE_KEYS if msg.get(k) is not None), None)
    if declared is None:
        return default
    rate = count(declared)
    if rate not in SUPPORTED_RATES:
        raise RemoteProtocolError(f"raw_pcm: unsupported sample rate {preview(declared)}")
    return rate


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


class RawPCMSerializer(FrameSerializer):
    """Serializer for the raw-PCM protocol (and jambonz / FreeSWITCH audio streams).

    Args:
        sample_rate: wire rate until a start message declares another one.
        params: ``RawPCMSerializer.InputParams``.
    """

    provider: ClassVar[str] = PROVIDER
    supports_playback_acks: ClassVar[bool] = True
    supports_dtmf_out: ClassVar[bool] = True

    @dataclass(frozen=True, slots=True, kw_only=True)
    class InputParams:
        #: Outbound packet duration in ms.
        packet_ms: int = 20
        #: Rate of the audio we send, when the client plays at another rate than it captures
        #: (jambonz ``bidirectionalAudio.sampleRate``); None means the inbound rate.
        output_sample_rate: int | None = None

    def __init__(self, sample_rate: int = 16000, params: InputParams | None = None) -> None:
        self.params = params or self.InputParams()
        for rate in (sample_rate, self.params.output_sample_rate or sample_rate):
            if rate not in SUPPORTED_RATES:
                raise ConfigurationError(f"raw PCM sample rate must be one of {SUPPORTED_RATES}, not {rate}")
        if not 10 <= self.params.packet_ms <= 200:
            raise ConfigurationError("packet_ms must be between 10 and 200")
        self._in_rate = sample_rate
        self._out_rate = self.params.output_sample_rate or sample_rate
        self.dialect: str | None = None
        self.call_id: str | None = None
        self.started = False

    def __repr__(self) -> str:
        return f"RawPCMSerializer(sample_rate={self._in_rate}, dialect={self.dialect!r}, call_id={self.call_id!r})"

    @property
    def input_format(self) -> MediaFormat:
        return MediaFormat("l16", self._in_rate, 1)

    @property
    def output_format(self) -> MediaFormat:
        return MediaFormat("l16", self._out_rate, 1)

    @property
    def packet_policy(self) -> PacketPolicy:
        return PacketPolicy(packet_bytes=self.output_format.bytes_for_ms(self.params.packet_ms), multiple_of=2)

    # --- inbound -----------------------------------------------------------------------

    def deserialize(self, data: Message) -> list[Frame | SerializerEvent]:
        if isinstance(data, bytes | bytearray | memoryview):
            return self._on_audio(bytes(data))
        if not isinstance(data, str):
            raise RemoteProtocolError("raw_pcm: message is neither text nor binary")
        obj = _json_object(data)
        if obj is None:
            if self.started:
                raise RemoteProtocolError("raw_pcm: text frame is not a JSON object")
            return [self._start(parse_raw_pcm_start(data, sample_rate=self._in_rate), METADATA)]
        event = obj.get("event")
        if event == "start":
            if self.started:
                raise RemoteProtocolError("raw_pcm: second start on one stream")
            return [self._start(parse_raw_pcm_start(obj, sample_rate=self._in_rate), PHONEWIRE)]
        handler = self._handlers.get(event) if isinstance(event, str) else None
        if handler is None:
            if self.started:
                raise RemoteProtocolError(f"raw_pcm: unknown event {preview(event, 40)}")
            dialect = JAMBONZ if any(k in obj for k in _JAMBONZ_KEYS) else METADATA
            return [self._start(parse_raw_pcm_start(obj, sample_rate=self._in_rate), dialect)]
        return self._implicit_start(handler(self, obj))

    def _start(self, info: CallInfo, dialect: str) -> StreamStarted:
        self.started = True
        self.dialect = dialect
        self.call_id = info.call_id
        self._in_rate = info.media_format.sample_rate
        self._out_rate = self.params.output_sample_rate or self._in_rate
        if dialect != PHONEWIRE:
            # jambonz and FreeSWITCH never echo our marks nor play our DTMF messages; say so per
            # instance so the transport falls back to its send clock instead of waiting.
            self.supports_playback_acks = False  # type: ignore[misc]
            self.supports_dtmf_out = False  # type: ignore[misc]
        return StreamStarted(info)

    def _implicit_start(self, frames: list[Frame | SerializerEvent]) -> list[Frame | SerializerEvent]:
        """A stream that opens without a start message starts with the defaults."""
        if self.started:
            return frames
        return [self._start(parse_raw_pcm_start(None, sample_rate=self._in_rate), PHONEWIRE), *frames]

    def _on_audio(self, pcm: bytes) -> list[Frame | SerializerEvent]:
        if len(pcm) % 2:
            raise RemoteProtocolError(f"raw_pcm: odd-length binary frame ({len(pcm)} bytes)")
        frames: list[Frame | SerializerEvent] = []
        if pcm:
            frames.append(InputAudioRawFrame(audio=pcm, sample_rate=self._in_rate))
        return self._implicit_start(frames)

    def _on_dtmf(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        digit = msg.get("digit", msg.get("dtmf"))  # jambonz passDtmf spells it "dtmf"
        duration = msg.get("duration_ms", msg.get("duration"))
        return [InputDTMFFrame(button=keypad(digit, PROVIDER), duration_ms=count(duration))]

    def _on_mark(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        name = msg.get("name")
        if not isinstance(name, str):
            raise RemoteProtocolError("raw_pcm: mark without a name")
        return [PlaybackMarkReached(name)]

    def _on_cleared(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        return [ClearAcknowledged()]

    def _on_stop(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        reason = msg.get("reason")
        return [StreamStopped(reason if isinstance(reason, str) else "stop")]

    def _on_message(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        return [InputTransportMessageFrame(message=msg.get("data"))]

    _handlers = {
        "dtmf": _on_dtmf,
        "mark": _on_mark,
        "cleared": _on_cleared,
        "stop": _on_stop,
        "message": _on_message,
    }

    # --- outbound ----------------------------------------------------------------------

    def encode_audio(self, pcm: bytes) -> list[Message]:
        return [bytes(pcm)]

    def encode_raw_audio(self, payload: bytes) -> list[Message]:
        return [bytes(payload)]

    def encode_clear(self) -> list[Message]:
        # jambonz's listen verb flushes streamed audio on killAudio; the others get our clear.
        return ['{"type":"killAudio"}'] if self.dialect == JAMBONZ else ['{"event":"clear"}']

    def encode_mark(self, name: str) -> list[Message]:
        if not self.supports_playback_acks:
            return []
        return [json.dumps({"event": "mark", "name": name}, separators=(",", ":"))]

    def encode_dtmf(self, digits: str) -> list[Message]:
        if not self.supports_dtmf_out:
            raise LocalProtocolError(f"a {self.dialect} stream cannot play DTMF")
        if not digits or not set(digits) <= _DTMF_OUT:
            raise LocalProtocolError(f"invalid DTMF digits {digits[:16]!r}")
        return [json.dumps({"event": "dtmf", "digits": digits}, separators=(",", ":"))]

    def encode_message(self, message: Any) -> list[Message]:
        if self.dialect in (JAMBONZ, METADATA):
            return super().encode_message(message)  # the gateway's own commands, verbatim
        try:
            return [json.dumps({"event": "message", "data": message}, separators=(",", ":"))]
        except (TypeError, ValueError) as exc:
            raise LocalProtocolError(f"transport message is not JSON-serializable ({exc})") from None

    # --- hang-up -----------------------------------------------------------------------

    @property
    def hangup_skip_reason(self) -> str | None:
        return "a raw PCM stream has no hang-up API: closing the WebSocket ends it"
