"""What the per-provider signature checks share: constant-time comparison, strict base64, caps
on attacker-controlled input, and ``SignatureError``."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from phonewire.exceptions import PhonewireError

Params = Mapping[str, str | Sequence[str]]
"""Form or query fields: one value, or several for a repeated name."""

TELNYX_TOLERANCE_S = 300.0
"""telnyx-python's TIMESTAMP_TOLERANCE_SECONDS: older (or newer) webhooks are replays or bad clocks."""

VONAGE_MAX_AGE_S = 300.0
"""How far a Vonage JWT's ``iat`` may be from our clock; same window as Telnyx, for the same reason."""

# Inputs are attacker-controlled; cap them before doing any work on them.
_MAX_JWT_CHARS = 16 * 1024
_MAX_HEADER_VALUE_CHARS = 1024
_B64URL_CHARS = re.compile(r"[A-Za-z0-9_-]*")


class SignatureError(PhonewireError):
    """A signed token (the Vonage JWT) is missing, forged, stale or does not match the body.

    The message says which check failed, never the secret. Reject the request (HTTP 401/403, or
    close the WebSocket with ``close_code``).
    """

    close_code: int = 1008


# --------------------------------------------------------------------------- shared helpers


def _utf8(text: str) -> bytes:
    # surrogatepass: hostile input may hold lone surrogates; it must fail the comparison, not raise.
    return text.encode("utf-8", "surrogatepass")


def _same(presented: str | bytes, expected: str | bytes) -> bool:
    """Constant-time equality that also works for non-ASCII text (compare_digest rejects it)."""
    left = presented if isinstance(presented, bytes) else _utf8(presented)
    right = expected if isinstance(expected, bytes) else _utf8(expected)
    return hmac.compare_digest(left, right)


def _any_same(presented: Iterable[str], expected: Sequence[str]) -> bool:
    """True if any presented value equals any expected one; every pair is compared."""
    matched = False
    for candidate in presented:
        for value in expected:
            matched |= _same(candidate, value)
    return matched


def _values(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _hmac_b64(key: str, message: bytes, digest: Callable[..., Any]) -> str:
    return base64.b64encode(hmac.new(_utf8(key), message, digest).digest()).decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Strict standard base64 (padding required), or None."""
    text = text.strip()
    if not text.isascii():
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def signature_bytes(signature_b64: str | None) -> bytes | None:
    """The bytes a base64 signature header (Twilio, Telnyx) stands for, or None.

    Replay memory keys on these, not on the header's text: what the MAC authenticates is the
    same for every spelling of one signed request.
    """
    if signature_b64 is None or len(signature_b64) > _MAX_HEADER_VALUE_CHARS:
        return None
    return _b64decode(signature_b64)


def _b64url_decode(text: str) -> bytes | None:
    """Unpadded base64url as used by JWTs, or None."""
    if not _B64URL_CHARS.fullmatch(text):
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
