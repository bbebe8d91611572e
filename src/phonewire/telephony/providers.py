"""The built-in providers' recognisers and serializer factories, registered for detect()."""

from __future__ import annotations

import os
from typing import Any

from phonewire.serializers.base import CallInfo
from phonewire.serializers.twilio import TwilioFrameSerializer, parse_twilio_start
from phonewire.telephony.detect import register_provider

__all__: list[str] = []


def _is_dict(m: Any) -> bool:
    return isinstance(m, dict)


def _twilio_start(parsed: list[Any]) -> int | None:
    for i, m in enumerate(parsed):
        if _is_dict(m) and m.get("event") == "start" and isinstance(m.get("start"), dict):
            s = m["start"]
            if "streamSid" in s and "callSid" in s:
                return i
    return None


def _twilio_factory(info: CallInfo, **kw: Any) -> TwilioFrameSerializer:
    return TwilioFrameSerializer(
        info.stream_id or "",
        call_sid=info.call_id,
        account_sid=kw.pop("account_sid", None) or info.account_id,
        auth_token=kw.pop("auth_token", None) or os.environ.get("TWILIO_AUTH_TOKEN"),
        **kw,
    )


register_provider("twilio", _twilio_start, parse_twilio_start, _twilio_factory)
