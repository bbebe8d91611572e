"""The providers phonewire speaks, as data: one ``Provider`` record each.

A record says how the provider is recognised from its opening messages, how its start message
becomes a ``CallInfo``, how its serializer is built from the call's own data (codec and rate from
the start message, credentials from keyword arguments or the environment, defaults implied by the
webhook answer phonewire gave), which environment variables hold its REST credentials, and whether
phonewire serves its webhook. ``get_provider(name)`` and ``providers()`` are the public lookup;
``phonewire.telephony.detect`` reads the same registry.

Recognition keys on each provider's *start* message (protocols.md §7):

========  =====================================================================
twilio    ``event: start`` with ``start.streamSid`` and ``start.callSid``
telnyx    ``event: start`` with top-level ``stream_id`` and ``start.call_control_id``
plivo     ``event: start`` with camelCase ``start.streamId`` and ``start.callId``
exotel    ``event: start`` with ``start.stream_sid`` and ``start.call_sid``
vonage    ``event: websocket:connected``, or a binary first frame (Vonage's audio-first flow)
raw_pcm   ``event: start`` with none of the above, a jambonz metadata frame, or - on a route
          pinned to ``providers=["raw_pcm"]`` - any first message (binary audio, FreeSWITCH metadata)
========  =====================================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from phonewire.serializers.base import CallInfo, FrameSerializer, MediaFormat
from phonewire.serializers.exotel import ExotelFrameSerializer, parse_exotel_start
from phonewire.serializers.plivo import PlivoFrameSerializer, parse_plivo_start
from phonewire.serializers.raw_pcm import RawPCMSerializer, parse_raw_pcm_start
from phonewire.serializers.telnyx import TelnyxFrameSerializer, parse_telnyx_start
from phonewire.serializers.twilio import TwilioFrameSerializer, parse_twilio_start
from phonewire.serializers.vonage import VonageFrameSerializer, parse_vonage_connected

__all__ = ["CATCH_ALL", "Provider", "Recognizer", "get_provider", "providers", "register_provider"]

#: ``recognise(parsed opening messages)`` -> (index of the start message, whether the serializer
#: must also see that message), or None while the provider's start is not among them.
Recognizer = Callable[[list[Any]], tuple[int, bool] | None]
#: The provider a route can be pinned to that accepts any opening (binary audio, metadata).
CATCH_ALL = "raw_pcm"


def _no_answer_defaults(kwargs: dict[str, Any], codec: str, rate: int | None) -> dict[str, Any]:
    return kwargs


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider: recognition, start parsing, serializer construction, credentials."""

    name: str
    recognise: Recognizer
    #: The start message (as ``recognise`` saw it: parsed JSON, text or bytes) -> CallInfo.
    parse_start: Callable[[Any], CallInfo]
    #: ``build(info, **kwargs)``: the serializer, credentials already resolved into ``kwargs``.
    build: Callable[..., FrameSerializer] = field(repr=False)
    #: Serializer keyword -> environment variable read when the keyword is not given.
    credentials: Mapping[str, str] = field(default_factory=dict)
    #: Whether phonewire answers this provider's call webhook (``server/webhooks.py``).
    webhook: bool = True
    #: The wire format of a call that declares none (used by start-up checks).
    default_format: MediaFormat = MediaFormat("mulaw", 8000)
    #: ``(kwargs, codec, rate) -> kwargs``: what the codec our webhook answer asked the provider
    #: to play implies for the serializer (Telnyx: ``bidirectionalCodec``/``SamplingRate``).
    answer_defaults: Callable[[dict[str, Any], str, int | None], dict[str, Any]] = field(
        default=_no_answer_defaults, repr=False
    )

    def build_serializer(
        self, info: CallInfo, *, answer_codec: str | None = None, answer_rate: int | None = None, **kwargs: Any
    ) -> FrameSerializer:
        """The call's serializer. Keyword arguments win over the environment (``credentials``);
        ``answer_codec``/``answer_rate`` name what the webhook answer asked for, if anything."""
        kw = dict(kwargs)
        if answer_codec is not None:
            kw = self.answer_defaults(kw, answer_codec, answer_rate)
        for key, env in self.credentials.items():
            kw[key] = kw.pop(key, None) or os.environ.get(env)
        return self.build(info, **kw)


_REGISTRY: dict[str, Provider] = {}


def register_provider(provider: Provider) -> Provider:
    """Add (or replace) a provider; recognition tries providers in registration order."""
    _REGISTRY[provider.name] = provider
    return provider


def get_provider(name: str) -> Provider:
    """The provider called ``name``; ``KeyError`` (naming the known ones) for any other."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown provider {name!r} (known: {', '.join(_REGISTRY)})") from None


def providers() -> tuple[Provider, ...]:
    """Every registered provider, in recognition order."""
    return tuple(_REGISTRY.values())


def _start_with(parsed: list[Any], *keys: str, top: str | None = None) -> tuple[int, bool] | None:
    for i, m in enumerate(parsed):
        if isinstance(m, dict) and m.get("event") == "start" and isinstance(m.get("start"), dict):
            if all(k in m["start"] for k in keys) and (top is None or top in m):
                return i, False
    return None


# --- twilio -----------------------------------------------------------------------------


def _twilio_build(info: CallInfo, *, account_sid: str | None = None, **kw: Any) -> TwilioFrameSerializer:
    return TwilioFrameSerializer(
        info.stream_id or "",
        call_sid=info.call_id,
        # A configured account (TWILIO_ACCOUNT_SID) wins over the peer's start.accountSid: our
        # credentials belong to it, and a peer-written account never reaches a REST URL then.
        account_sid=account_sid or info.account_id,
        **kw,
    )


# --- telnyx -----------------------------------------------------------------------------


def _telnyx_build(info: CallInfo, **kw: Any) -> TelnyxFrameSerializer:
    return TelnyxFrameSerializer(
        info.stream_id or "", call_control_id=info.call_id, media_format=info.media_format, **kw
    )


def _telnyx_answer_defaults(kwargs: dict[str, Any], codec: str, rate: int | None) -> dict[str, Any]:
    # Send what the TeXML answer asked Telnyx to play (bidirectionalCodec / SamplingRate).
    if not any(k in kwargs for k in ("send_encoding", "inbound_encoding")):
        kwargs["send_encoding"] = codec
    if codec.upper() == "L16" and "params" not in kwargs:
        kwargs["params"] = TelnyxFrameSerializer.InputParams(telnyx_sample_rate=rate)
    return kwargs


# --- plivo ------------------------------------------------------------------------------


def _plivo_build(info: CallInfo, **kw: Any) -> PlivoFrameSerializer:
    return PlivoFrameSerializer(info.stream_id or "", call_id=info.call_id, media_format=info.media_format, **kw)


# --- exotel -----------------------------------------------------------------------------


def _exotel_build(info: CallInfo, **kw: Any) -> ExotelFrameSerializer:
    return ExotelFrameSerializer(info.stream_id or "", call_sid=info.call_id, media_format=info.media_format, **kw)


# --- vonage -----------------------------------------------------------------------------

#: Vonage frames are exactly 20 ms, so a binary first frame's size gives its rate.
_VONAGE_RATE_BY_FRAME = {320: 8000, 640: 16000, 960: 24000}


def _vonage_start(parsed: list[Any]) -> tuple[int, bool] | None:
    first = parsed[0] if parsed else None
    if isinstance(first, bytes | bytearray) and len(first) in _VONAGE_RATE_BY_FRAME:
        return 0, True  # audio before any text: keep the frame, it is the caller speaking
    for i, m in enumerate(parsed):
        if isinstance(m, dict) and m.get("event") == "websocket:connected":
            return i, False
    return None


def _vonage_parse(msg: Any) -> CallInfo:
    if isinstance(msg, bytes | bytearray):
        return CallInfo("vonage", None, None, MediaFormat("l16", _VONAGE_RATE_BY_FRAME[len(msg)], 1))
    return parse_vonage_connected(msg)


def _vonage_build(info: CallInfo, **kw: Any) -> VonageFrameSerializer:
    return VonageFrameSerializer(
        kw.pop("params", None),
        call_uuid=kw.pop("call_uuid", None) or info.call_id,
        sample_rate=info.media_format.sample_rate,
        **kw,
    )


# --- raw PCM ----------------------------------------------------------------------------

_PROVIDER_START_KEYS = ("streamSid", "call_control_id", "streamId", "stream_sid")


def _raw_start(parsed: list[Any]) -> tuple[int, bool] | None:
    first = parsed[0] if parsed else None
    if not isinstance(first, dict):
        return None
    start = first.get("start")
    if first.get("event") == "start" and not (
        isinstance(start, dict) and any(k in start for k in _PROVIDER_START_KEYS)
    ):
        return 0, True
    if "event" not in first and "callSid" in first and ("sampleRate" in first or "mixType" in first):
        return 0, True  # jambonz listen metadata
    return None


def _raw_build(info: CallInfo, **kw: Any) -> RawPCMSerializer:
    return RawPCMSerializer(sample_rate=info.media_format.sample_rate, **kw)


TWILIO = register_provider(
    Provider(
        "twilio",
        lambda p: _start_with(p, "streamSid", "callSid"),
        parse_twilio_start,
        _twilio_build,
        credentials={"account_sid": "TWILIO_ACCOUNT_SID", "auth_token": "TWILIO_AUTH_TOKEN"},
    )
)
TELNYX = register_provider(
    Provider(
        "telnyx",
        lambda p: _start_with(p, "call_control_id", top="stream_id"),
        parse_telnyx_start,
        _telnyx_build,
        credentials={"api_key": "TELNYX_API_KEY"},
        answer_defaults=_telnyx_answer_defaults,
    )
)
PLIVO = register_provider(
    Provider(
        "plivo",
        lambda p: _start_with(p, "streamId", "callId"),
        parse_plivo_start,
        _plivo_build,
        credentials={"auth_id": "PLIVO_AUTH_ID", "auth_token": "PLIVO_AUTH_TOKEN"},
    )
)
EXOTEL = register_provider(
    Provider(
        "exotel",
        lambda p: _start_with(p, "stream_sid", "call_sid"),
        parse_exotel_start,
        _exotel_build,
        default_format=MediaFormat("l16", 8000),
    )
)
VONAGE = register_provider(
    Provider(
        "vonage",
        _vonage_start,
        _vonage_parse,
        _vonage_build,
        credentials={"application_id": "VONAGE_APPLICATION_ID", "private_key": "VONAGE_PRIVATE_KEY"},
        default_format=MediaFormat("l16", 16000),
    )
)
RAW_PCM = register_provider(
    Provider(
        CATCH_ALL,
        _raw_start,
        parse_raw_pcm_start,
        _raw_build,
        webhook=False,
        default_format=MediaFormat("l16", 16000),
    )
)
