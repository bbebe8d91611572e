"""The built-in providers: how each is recognised from its opening messages, and how its
serializer is built from the call's own data (codec and rate from the start message,
credentials from keyword arguments or the environment).

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
from typing import Any

from phonewire.serializers.base import CallInfo, MediaFormat
from phonewire.serializers.exotel import ExotelFrameSerializer, parse_exotel_start
from phonewire.serializers.plivo import PlivoFrameSerializer, parse_plivo_start
from phonewire.serializers.raw_pcm import RawPCMSerializer, parse_raw_pcm_start
from phonewire.serializers.telnyx import TelnyxFrameSerializer, parse_telnyx_start
from phonewire.serializers.twilio import TwilioFrameSerializer, parse_twilio_start
from phonewire.serializers.vonage import VonageFrameSerializer, parse_vonage_connected
from phonewire.telephony.detect import register_provider

__all__: list[str] = []

#: Vonage frames are exactly 20 ms, so a binary first frame's size gives its rate.
_VONAGE_RATE_BY_FRAME = {320: 8000, 640: 16000, 960: 24000}


def _start_with(parsed: list[Any], *keys: str, top: str | None = None) -> tuple[int, bool] | None:
    for i, m in enumerate(parsed):
        if isinstance(m, dict) and m.get("event") == "start" and isinstance(m.get("start"), dict):
            if all(k in m["start"] for k in keys) and (top is None or top in m):
                return i, False
    return None


def _env(kw: dict[str, Any], key: str, env: str) -> Any:
    return kw.pop(key, None) or os.environ.get(env)


# --- twilio -----------------------------------------------------------------------------


def _twilio_factory(info: CallInfo, **kw: Any) -> TwilioFrameSerializer:
    return TwilioFrameSerializer(
        info.stream_id or "",
        call_sid=info.call_id,
        # A configured account (TWILIO_ACCOUNT_SID) wins over the peer's start.accountSid: our
        # credentials belong to it, and a peer-written account never reaches a REST URL then.
        account_sid=_env(kw, "account_sid", "TWILIO_ACCOUNT_SID") or info.account_id,
        auth_token=_env(kw, "auth_token", "TWILIO_AUTH_TOKEN"),
        **kw,
    )


# --- telnyx -----------------------------------------------------------------------------


def _telnyx_factory(info: CallInfo, **kw: Any) -> TelnyxFrameSerializer:
    return TelnyxFrameSerializer(
        info.stream_id or "",
        call_control_id=info.call_id,
        api_key=_env(kw, "api_key", "TELNYX_API_KEY"),
        media_format=info.media_format,
        **kw,
    )


# --- plivo ------------------------------------------------------------------------------


def _plivo_factory(info: CallInfo, **kw: Any) -> PlivoFrameSerializer:
    return PlivoFrameSerializer(
        info.stream_id or "",
        call_id=info.call_id,
        auth_id=_env(kw, "auth_id", "PLIVO_AUTH_ID"),
        auth_token=_env(kw, "auth_token", "PLIVO_AUTH_TOKEN"),
        media_format=info.media_format,
        **kw,
    )


# --- exotel -----------------------------------------------------------------------------


def _exotel_factory(info: CallInfo, **kw: Any) -> ExotelFrameSerializer:
    return ExotelFrameSerializer(info.stream_id or "", call_sid=info.call_id, media_format=info.media_format, **kw)


# --- vonage -----------------------------------------------------------------------------


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


def _vonage_factory(info: CallInfo, **kw: Any) -> VonageFrameSerializer:
    return VonageFrameSerializer(
        kw.pop("params", None),
        call_uuid=kw.pop("call_uuid", None) or info.call_id,
        application_id=_env(kw, "application_id", "VONAGE_APPLICATION_ID"),
        private_key=_env(kw, "private_key", "VONAGE_PRIVATE_KEY"),
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


def _raw_factory(info: CallInfo, **kw: Any) -> RawPCMSerializer:
    return RawPCMSerializer(sample_rate=info.media_format.sample_rate, **kw)


register_provider("twilio", lambda p: _start_with(p, "streamSid", "callSid"), parse_twilio_start, _twilio_factory)
register_provider(
    "telnyx", lambda p: _start_with(p, "call_control_id", top="stream_id"), parse_telnyx_start, _telnyx_factory
)
register_provider("plivo", lambda p: _start_with(p, "streamId", "callId"), parse_plivo_start, _plivo_factory)
register_provider("exotel", lambda p: _start_with(p, "stream_sid", "call_sid"), parse_exotel_start, _exotel_factory)
register_provider("vonage", _vonage_start, _vonage_parse, _vonage_factory)
register_provider("raw_pcm", _raw_start, parse_raw_pcm_start, _raw_factory)
