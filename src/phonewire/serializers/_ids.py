"""Provider id formats, checked before an id goes into a REST URL.

Call ids reach us in the peer's start message; a verified stream token proves the call id
was minted for, but other fields (Twilio's ``accountSid``) are whatever the peer wrote. An
id containing ``/``, ``?`` or ``..`` would re-target a hang-up at another call (issue 11,
finding 4), so every id is matched against its provider's documented shape first, and
then still quoted per path segment. A mismatch means no hang-up; the call goes on.

The formats (protocols.md and the providers' docs): Twilio SIDs are two letters and 32 hex
digits; Telnyx call control ids are ``v2:``/``v3:`` and URL-safe base64 (older ones are
UUIDs); Plivo and Vonage call ids are UUIDs; credentials we were configured with (Plivo
auth id) only need to be URL-safe. Anything else falls back to ``GENERIC``.
"""

from __future__ import annotations

import re
from urllib.parse import quote

__all__ = [
    "GENERIC",
    "PLIVO_AUTH_ID",
    "TELNYX_CALL_CONTROL_ID",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_CALL_SID",
    "UUID",
    "invalid_id_reason",
    "segment",
]

TWILIO_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
TWILIO_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: ``v3:`` + base64url (padding tolerated), or a legacy UUID.
TELNYX_CALL_CONTROL_ID = re.compile(rf"v[0-9]{{1,2}}:[A-Za-z0-9_-]{{1,400}}={{0,2}}|{UUID.pattern}")
#: Plivo auth ids are ``MA``/``SA`` + 18 characters; configured by the operator, so only URL-safe.
PLIVO_AUTH_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: When a provider documents no format: no separators, no spaces, bounded.
GENERIC = re.compile(r"[A-Za-z0-9_:.-]{1,128}")


def invalid_id_reason(name: str, value: str | None, pattern: re.Pattern[str]) -> str | None:
    """None when ``value`` matches; else a reason naming the field, never echoing the value
    (it is peer input and would be logged)."""
    if value is None:
        return None
    if not value.strip("."):
        return f"invalid {name} (a path step)"
    if pattern.fullmatch(value):
        return None
    return f"invalid {name} (not a well-formed id; {len(value)} characters)"


def segment(value: str, safe: str = "") -> str:
    """One URL path segment: everything but unreserved characters (and ``safe``) escaped."""
    return quote(value, safe=safe)
