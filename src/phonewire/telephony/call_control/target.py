"""Where a live call lives on its provider's REST API, read from the call's serializer.

The serializer's hang-up request is the one place that already holds everything a REST
action needs, checked: the ids matched to the provider's formats (``serializers/_ids.py``)
and quoted per segment, the API root (``base_url`` in tests) and fresh authentication (a new
Vonage JWT each time). So a target is derived from it, right before each action. No hang-up
request (credentials missing, an id that is not well formed, ``auto_hang_up`` off) means no
call control either, and the reason says why.
"""

from __future__ import annotations

from phonewire.serializers.base import FrameSerializer
from phonewire.telephony.call_control.base import CallTarget, Unsupported

__all__ = ["call_target"]

_TELNYX_HANGUP = "/actions/hangup"


def call_target(serializer: FrameSerializer) -> CallTarget:
    """The verified call's REST target; ``Unsupported`` with the reason when there is none."""
    provider = serializer.provider
    if provider in ("exotel", "raw_pcm", "generic"):
        raise Unsupported(f"{provider} has no REST API to control a live call")
    request = serializer.hangup_request()
    if request is None:
        raise Unsupported(f"no REST access to this {provider} call ({serializer.hangup_skip_reason})")
    url = request.url
    if provider == "telnyx":
        url = url.removesuffix(_TELNYX_HANGUP)
    root, call_id, account = _split(provider, url, serializer)
    return CallTarget(provider, call_id, url, root, dict(request.headers), account)


def _split(provider: str, url: str, serializer: FrameSerializer) -> tuple[str, str, str]:
    """(API root, call id, account) of a call resource URL this module built itself."""
    if provider == "twilio":
        root = url.split("/2010-04-01/", 1)[0]
        return root, str(getattr(serializer, "call_sid", "")), str(getattr(serializer, "account_sid", ""))
    if provider == "telnyx":
        return url.split("/v2/calls/", 1)[0], str(getattr(serializer, "call_control_id", "")), ""
    if provider == "plivo":
        return url.split("/v1/Account/", 1)[0], str(getattr(serializer, "call_id", "")), str(serializer.auth_id)  # type: ignore[attr-defined]
    return url.split("/v1/calls/", 1)[0], str(getattr(serializer, "call_uuid", "")), ""
