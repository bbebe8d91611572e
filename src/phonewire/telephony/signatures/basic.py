"""HTTP Basic (Exotel, which signs nothing): the operator puts ``user:pass`` in the applet's URL."""

from __future__ import annotations

from phonewire.telephony.signatures._common import (
    _MAX_HEADER_VALUE_CHARS,
    _b64decode,
    _same,
    _utf8,
)


def verify_basic_auth(header: str | None, expected_credentials: str) -> bool:
    """Check ``Authorization: Basic base64(user:pass)`` against the configured ``user:pass``.

    For providers that sign nothing (Exotel): the operator embeds the credentials in the URL the
    provider calls. An empty or colon-less expected value never matches (fail closed).
    Constant-time; never raises on bad input.
    """
    if not header or ":" not in expected_credentials or len(header) > _MAX_HEADER_VALUE_CHARS:
        return False
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    raw = _b64decode(encoded)
    if raw is None:
        return False
    return _same(raw, _utf8(expected_credentials))
