"""Telnyx media streaming, bidirectional RTP mode (Call Control ``stream_*`` fields or TeXML).

(Above 400 lines because Telnyx's codec vocabulary is the largest: three encodings at two rates,
two spellings each for what we send and receive, L16 byte order, reordering and DTMF de-duplication.
The start parsing and the serializer share those tables, so they stay in one module.)

Wire facts this module relies on (developers.telnyx.com media-streaming guide and AsyncAPI
page): every message is a JSON text frame with snake_case keys; ``sequence_number``,
``chunk`` and ``timestamp`` are strings; ``stream_id`` is top level; the ``start`` message's
``media_format`` gives the codec of the audio Telnyx sends (current docs say ``PCMU``/
``PCMA``/``L16``..., older revisions ``audio/x-mulaw``: both are accepted). Media ordering is
*not* guaranteed, so inbound audio goes through a small reorder buffer keyed by ``chunk``.

What we send (``{"event":"media","media":{"payload":...}}``, ``mark``, ``clear``) carries no
``stream_id``. Raw codec payloads only play when the stream was started with
``stream_bidirectional_mode="rtp"`` (Telnyx's default is ``mp3``, which silently drops them)
and a ``stream_bidirectional_codec`` that matches ``send_encoding``. ``mark`` is echoed when
the audio before it has played (at once if nothing is queued); ``clear`` drops queued audio
and echoes every outstanding mark.

L16 byte order is not stated in Telnyx's docs. Payloads are RTP payloads without the header,
and RFC 3551 §4.5.11 defines L16 in network (big-endian) order, which is also what every
public Telnyx L16 implementation we know of sends; so ``big`` is the default, and
``InputParams.l16_byte_order="little"`` flips it should Telnyx ever prove otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from phonewire.audio.codecs import Codec, codec_for
from phonewire.exceptions import ConfigurationError, LocalProtocolError, RemoteProtocolError
from phonewire.frames import Frame, InputAudioRawFrame
from phonewire.serializers._ids import TELNYX_CALL_CONTROL_ID, invalid_id_reason, segment
from phonewire.serializers._json_stream import JSONStreamSerializer
from phonewire.serializers._reorder import ReorderBuffer, ReorderStats
from phonewire.serializers._values import (
    MAX_TEXT,
    b64decode,
    b64encode,
    counter,
    dtmf_frame,
    field,
    param_text,
    parse_content_type,
    text,
)
from phonewire.serializers.base import (
    CallInfo,
    HangupOutcome,
    HangupRequest,
    MediaFormat,
    Message,
    PacketPolicy,
    ProviderError,
    SerializerEvent,
    _default_interpret,
    hangup_missing,
)

__all__ = ["TelnyxFrameSerializer", "parse_telnyx_start", "telnyx_encoding_name"]

PROVIDER = "telnyx"
API_ROOT = "https://api.telnyx.com"
DEFAULT_FORMAT = MediaFormat("mulaw", 8000, 1)
#: Telnyx documents L16 at 16 kHz for bidirectional RTP; 8 kHz is accepted too.
L16_RATES = (8000, 16000)
#: Largest reorder window (25 packets = 500 ms): more is a jitter buffer, not a reorder fix.
MAX_REORDER_WINDOW = 25
#: Telnyx error code for "call has already ended" in a 422 response.
ALREADY_ENDED_CODE = "90018"

_ENCODINGS = {
    "pcmu": "mulaw",
    "audio/x-mulaw": "mulaw",
    "audio/pcmu": "mulaw",
    "audio/mulaw": "mulaw",
    "mulaw": "mulaw",
    "ulaw": "mulaw",
    "pcma": "alaw",
    "audio/x-alaw": "alaw",
    "audio/pcma": "alaw",
    "audio/alaw": "alaw",
    "alaw": "alaw",
    "l16": "l16",
    "audio/l16": "l16",
    "audio/x-l16": "l16",
    "linear16": "l16",
}
_TELNYX_NAMES = {"mulaw": "PCMU", "alaw": "PCMA", "l16": "L16"}
_OUTBOUND_EVENTS = frozenset({"media", "mark", "clear"})
#: Remembered DTMF (occurred_at, digit) pairs, to drop re-delivered digits.
_DTMF_MEMORY = 8


def telnyx_encoding_name(fmt: MediaFormat) -> str:
    """The Telnyx codec name (``PCMU``/``PCMA``/``L16``) for a MediaFormat."""
    return _TELNYX_NAMES[fmt.encoding]


def _check_format(fmt: MediaFormat, what: str) -> MediaFormat:
    if fmt.encoding not in _TELNYX_NAMES or fmt.channels != 1:
        raise ConfigurationError(f"telnyx: unsupported {what} {fmt}")
    if fmt.encoding == "l16" and fmt.sample_rate not in L16_RATES:
        raise ConfigurationError(f"telnyx: L16 must be 8000 or 16000 Hz, not {fmt.sample_rate}")
    if fmt.encoding != "l16" and fmt.sample_rate != 8000:
        raise ConfigurationError(f"telnyx: {fmt.encoding} is 8000 Hz only, not {fmt.sample_rate}")
    return fmt


def _configured_encoding(name: str, what: str) -> str:
    encoding, _ = parse_content_type(name, _ENCODINGS) if isinstance(name, str) else (None, None)
    if encoding is None:
        raise ConfigurationError(f"telnyx: unsupported {what} {name!r} (PCMU, PCMA or L16)")
    return encoding


def _media_format(fmt: Any) -> MediaFormat:
    """``start.media_format`` -> MediaFormat (codec names or old MIME spellings)."""
    if fmt is None:
        return DEFAULT_FORMAT  # very old revisions had no media_format: the default is PCMU
    if not isinstance(fmt, dict):
        raise RemoteProtocolError("telnyx: media_format is not an object")
    raw = fmt.get("encoding", "PCMU")
    if not isinstance(raw, str):
        raise RemoteProtocolError("telnyx: media_format.encoding is not a string")
    encoding, named_rate = parse_content_type(raw, _ENCODINGS)
    if encoding is None:
        raise RemoteProtocolError(f"telnyx: unsupported media encoding {raw[:24]!r} (PCMU, PCMA or L16)")
    rate = counter(fmt.get("sample_rate"), "media_format.sample_rate", PROVIDER)
    if rate is None:
        rate = named_rate or (16000 if encoding == "l16" else 8000)
    channels = counter(fmt.get("channels"), "media_format.channels", PROVIDER)
    if channels not in (None, 1):
        raise RemoteProtocolError("telnyx: only mono media streams are supported")
    if (encoding == "l16" and rate not in L16_RATES) or (encoding != "l16" and rate != 8000):
        raise RemoteProtocolError(f"telnyx: unsupported sample rate {rate} for {_TELNYX_NAMES[encoding]}")
    return MediaFormat(encoding, rate, 1)


def _custom_parameters(value: Any) -> dict[str, str]:
    """``start.custom_parameters``: an object (documented) or a ``[{name, value}]`` array."""
    if value is None:
        return {}
    pairs: list[tuple[Any, Any]]
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = [(p.get("name"), p.get("value")) for p in value if isinstance(p, dict)]
    else:
        raise RemoteProtocolError("telnyx: custom_parameters is not an object")
    custom: dict[str, str] = {}
    for key, item in pairs:
        value = param_text(item)
        if isinstance(key, str) and value is not None:
            custom[key] = value
    return custom


def parse_telnyx_start(msg: dict[str, Any]) -> CallInfo:
    """Turn Telnyx's ``start`` message into a CallInfo (raises RemoteProtocolError)."""
    start = field(msg, "start", dict, PROVIDER)
    stream_id = text(msg, "stream_id", PROVIDER) or text(start, "stream_id", PROVIDER)
    if not stream_id:
        raise RemoteProtocolError("telnyx: start without stream_id")
    custom = _custom_parameters(start.get("custom_parameters"))
    return CallInfo(
        provider=PROVIDER,
        call_id=text(start, "call_control_id", PROVIDER),
        stream_id=stream_id,
        media_format=_media_format(start.get("media_format")),
        account_id=text(start, "user_id", PROVIDER),
        from_number=text(start, "from", PROVIDER) or custom.get("from_number"),
        to_number=text(start, "to", PROVIDER) or custom.get("to_number"),
        custom_parameters=custom,
        start_message=msg,
    )


def _interpret_hangup(status: int, body: bytes) -> HangupOutcome:
    if status == 422 and _has_error_code(body, ALREADY_ENDED_CODE):
        return HangupOutcome.ALREADY_ENDED
    return _default_interpret(status, body)


def _has_error_code(body: bytes, code: str) -> bool:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return False
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return False
    return any(isinstance(e, dict) and param_text(e.get("code")) == code for e in errors)


def _decode(codec: Codec, payload: bytes) -> bytes:
    try:
        return codec.decode(payload)
    except RemoteProtocolError as exc:
        raise RemoteProtocolError(f"telnyx: {exc}") from None


def _pick(alias: str | None, pipecat: str, alias_name: str, pipecat_name: str) -> str:
    if alias is None:
        return pipecat
    if pipecat != "PCMU" and _configured_encoding(pipecat, pipecat_name) != _configured_encoding(alias, alias_name):
        raise ConfigurationError(f"telnyx: {alias_name}={alias!r} contradicts {pipecat_name}={pipecat!r}")
    return alias


class TelnyxFrameSerializer(JSONStreamSerializer):
    """Serializer for one Telnyx media stream in bidirectional RTP mode.

    Encoding names follow Pipecat (and Telnyx's call-leg vocabulary), which reads
    backwards from a bot's point of view:

    * ``outbound_encoding`` — what Telnyx **sends us** (the ``stream_codec``); clearer
      alias: ``receive_encoding``. Overridden by ``media_format`` when the start message's
      format is known.
    * ``inbound_encoding`` — what we **send Telnyx** (the ``stream_bidirectional_codec``);
      clearer alias: ``send_encoding``.

    Each accepts ``PCMU``, ``PCMA`` or ``L16`` (also ``audio/x-mulaw``-style spellings).

    Args:
        stream_id: the top-level ``stream_id`` of the ``start`` message.
        call_control_id, api_key: needed only for automatic hang-up through the Call
            Control API (``TELNYX_API_KEY``). Without them hang-up is skipped with one
            warning. ``call_control_id`` is learnt from ``start`` if not given.
        params: ``TelnyxFrameSerializer.InputParams`` (never modified).
        media_format: the call's own ``start.media_format`` (see ``parse_telnyx_start``).
    """

    provider: ClassVar[str] = PROVIDER
    supports_playback_acks: ClassVar[bool] = True
    #: Telnyx plays digits with the Call Control ``send_dtmf`` REST action, not over the stream.
    supports_dtmf_out: ClassVar[bool] = False
    stream_key: ClassVar[str] = "stream_id"
    _outbound_events: ClassVar[frozenset[str]] = _OUTBOUND_EVENTS
    _commands_name_stream: ClassVar[bool] = False  # what we send carries no stream_id
    _events: ClassVar[tuple[str, ...]] = (*JSONStreamSerializer._events, "error")

    @dataclass(frozen=True, slots=True, kw_only=True)
    class InputParams:
        auto_hang_up: bool = True
        #: Pipeline input rate override, kept for code written against Pipecat; the
        #: transport's ``audio_in_sample_rate`` is the preferred knob.
        sample_rate: int | None = None
        #: L16 wire rate (``stream_bidirectional_sampling_rate``) when it is not known from
        #: ``media_format``. None: the inbound stream's L16 rate, else 16000. Ignored for
        #: PCMU/PCMA, which are 8000 Hz by definition.
        telnyx_sample_rate: int | None = None
        #: Byte order of L16 on the wire, both directions (see the module docstring).
        l16_byte_order: Literal["big", "little"] = "big"
        #: Out-of-order media tolerance, in packets (3 x 20 ms = 60 ms); 0 turns it off.
        reorder_window: int = 3
        #: REST API root, e.g. a local fake in tests.
        base_url: str | None = None

    def __init__(
        self,
        stream_id: str,
        outbound_encoding: str = "PCMU",
        inbound_encoding: str = "PCMU",
        call_control_id: str | None = None,
        api_key: str | None = None,
        params: InputParams | None = None,
        *,
        media_format: MediaFormat | None = None,
        send_encoding: str | None = None,
        receive_encoding: str | None = None,
    ) -> None:
        self.params = params or self.InputParams()
        p = self.params
        if p.l16_byte_order not in ("big", "little"):
            raise ConfigurationError("telnyx: l16_byte_order must be 'big' or 'little'")
        if not 0 <= p.reorder_window <= MAX_REORDER_WINDOW:
            raise ConfigurationError(f"telnyx: reorder_window must be 0..{MAX_REORDER_WINDOW} packets")
        if p.telnyx_sample_rate is not None and p.telnyx_sample_rate not in L16_RATES:
            raise ConfigurationError("telnyx: telnyx_sample_rate must be 8000 or 16000")
        receive = _configured_encoding(
            _pick(receive_encoding, outbound_encoding, "receive_encoding", "outbound_encoding"), "receive encoding"
        )
        send = _configured_encoding(
            _pick(send_encoding, inbound_encoding, "send_encoding", "inbound_encoding"), "send encoding"
        )
        if media_format is not None:
            self._in = _check_format(media_format, "media_format")
        elif receive == "l16":
            self._in = MediaFormat("l16", p.telnyx_sample_rate or 16000, 1)
        else:
            self._in = MediaFormat(receive, 8000, 1)
        if send == "l16":
            rate = p.telnyx_sample_rate or (self._in.sample_rate if self._in.encoding == "l16" else 16000)
            self._out = MediaFormat("l16", rate, 1)
        else:
            self._out = MediaFormat(send, 8000, 1)
        self.stream_id = self._stream = stream_id
        self.call_control_id = call_control_id
        self._api_key = api_key
        self._byte_order = p.l16_byte_order
        self._in_codec = codec_for(self._in.encoding, byte_order=self._byte_order)
        self._out_codec = codec_for(self._out.encoding, byte_order=self._byte_order)
        self._prefix = self._media_prefix(with_stream=False)  # what we send carries no stream_id
        self._reorder: ReorderBuffer[InputAudioRawFrame] = ReorderBuffer(p.reorder_window, first_expected=1)
        self._recent_dtmf: list[tuple[str, str]] = []
        self.started = False
        self.stopped = False
        #: DTMF events Telnyx delivered twice (same occurred_at and digit), dropped.
        self.duplicate_dtmf = 0

    def __repr__(self) -> str:
        return (
            f"TelnyxFrameSerializer(stream_id={self.stream_id!r}, call_control_id={self.call_control_id!r}, "
            f"receive={telnyx_encoding_name(self._in)}/{self._in.sample_rate}, "
            f"send={telnyx_encoding_name(self._out)}/{self._out.sample_rate})"
        )

    @property
    def input_format(self) -> MediaFormat:
        return self._in

    @property
    def output_format(self) -> MediaFormat:
        return self._out

    @property
    def packet_policy(self) -> PacketPolicy:
        # Telnyx takes 20 ms to 30 s per media message: 20 ms packets, and a short tail is
        # padded with silence up to a full 20 ms so no message is below the minimum.
        size = self._out.bytes_for_ms(20)
        return PacketPolicy(packet_bytes=size, multiple_of=size)

    @property
    def reorder_stats(self) -> ReorderStats:
        """Counters of the inbound reorder buffer (reordered, duplicates, late, lost, resyncs)."""
        return self._reorder.stats

    # --- inbound -----------------------------------------------------------------------

    def flush_audio(self) -> list[Frame | SerializerEvent]:
        """Release audio held by the reorder buffer (call when the socket closes)."""
        return list(self._reorder.flush())

    def _on_connected(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        # May carry x-telnyx-streaming-auth-token; the transport checks it on the upgrade
        # headers, and we deliberately do not keep a copy of a secret here.
        return []

    def _on_start(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        started = self._accept_start(parse_telnyx_start(msg))
        self._in = started.info.media_format  # the call's own truth beats configuration
        self._in_codec = codec_for(self._in.encoding, byte_order=self._byte_order)
        if self.call_control_id is None:
            self.call_control_id = started.info.call_id
        return [started]

    def _on_media(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        media, callers = self._media(msg)
        payload = b64decode(media.get("payload"), PROVIDER)
        chunk = counter(media.get("chunk"), "media.chunk", PROVIDER)
        if not callers:
            return []  # both_tracks streams also carry the other leg: not the caller
        if not payload:
            return []
        codec = self._in_codec
        if self.keep_wire_audio and codec.is_g711:  # wire mode: the payload as carried, no decode
            rate, enc = self._in.sample_rate, codec.name
            wire = InputAudioRawFrame(audio=b"", sample_rate=rate, wire_audio=payload, wire_encoding=enc)
            return [wire] if chunk is None else list(self._reorder.push(chunk, wire))
        frame = InputAudioRawFrame(audio=_decode(codec, payload), sample_rate=self._in.sample_rate)
        if chunk is None:
            return [frame]
        return list(self._reorder.push(chunk, frame))

    def _on_dtmf(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        self._check_stream(msg)
        dtmf = field(msg, "dtmf", dict, PROVIDER)
        occurred_at = text(msg, "occurred_at", PROVIDER)
        frame = dtmf_frame(dtmf.get("digit"), PROVIDER, {"occurred_at": occurred_at} if occurred_at else None)
        if occurred_at:
            key = (occurred_at, frame.button.value)
            if key in self._recent_dtmf:
                self.duplicate_dtmf += 1
                return []
            self._recent_dtmf = [*self._recent_dtmf[-(_DTMF_MEMORY - 1) :], key]
        return [frame]

    def _on_error(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        self._check_stream(msg)
        payload = field(msg, "payload", dict, PROVIDER)
        code = payload.get("code")
        if isinstance(code, bool) or not isinstance(code, int | str):
            code = None
        elif isinstance(code, str):
            code = code[:40]
        title = payload.get("title")
        detail = payload.get("detail")
        return [
            ProviderError(
                code=code,
                title=title[:MAX_TEXT] if isinstance(title, str) and title else "error",
                detail=detail[:MAX_TEXT] if isinstance(detail, str) else "",
            )
        ]

    def _on_stop(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        stopped = super()._on_stop(msg)
        return [*self._reorder.flush(), *stopped]  # the audio held for reordering comes first

    # --- outbound ----------------------------------------------------------------------

    def encode_audio(self, pcm: bytes) -> list[Message]:
        return [self._prefix + b64encode(self._out_codec.encode(pcm)) + '"}}']

    def encode_raw_audio(self, payload: bytes) -> list[Message]:
        # "Already encoded" means encoded as ``output_format`` says; for L16 that is
        # little-endian (the MediaFormat convention), so the wire byte order still applies.
        if not self._out_codec.is_g711:
            payload = self._out_codec.encode(payload)
        return [self._prefix + b64encode(payload) + '"}}']

    def encode_dtmf(self, digits: str) -> list[Message]:
        raise LocalProtocolError(
            "telnyx has no outbound DTMF over the media stream; use the Call Control "
            "POST /v2/calls/{call_control_id}/actions/send_dtmf REST action"
        )

    # --- hang-up -----------------------------------------------------------------------

    @property
    def api_root(self) -> str:
        return (self.params.base_url or API_ROOT).rstrip("/")

    @property
    def hangup_skip_reason(self) -> str | None:
        required = {"call_control_id": self.call_control_id, "api_key": self._api_key}
        if (missing := hangup_missing(self.params.auto_hang_up, required)) is not None:
            return missing
        return invalid_id_reason("call_control_id", self.call_control_id, TELNYX_CALL_CONTROL_ID)

    def hangup_request(self) -> HangupRequest | None:
        if self.hangup_skip_reason is not None:
            return None
        assert self.call_control_id and self._api_key
        return HangupRequest(
            method="POST",
            url=f"{self.api_root}/v2/calls/{segment(self.call_control_id, safe=':=')}/actions/hangup",
            headers={"Authorization": f"Bearer {self._api_key}"},
            json={},
            interpret=_interpret_hangup,
        )
