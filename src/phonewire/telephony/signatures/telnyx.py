"""Telnyx: Ed25519 over ``"<telnyx-timestamp>|<raw body>"``; the media-stream upgrade carries a
static ``x-telnyx-streaming-auth-token`` instead."""

from __future__ import annotations

import time
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from phonewire.exceptions import ConfigurationError
from phonewire.telephony.signatures._common import (
    TELNYX_TOLERANCE_S,
    _b64decode,
    _same,
    _utf8,
)


@lru_cache(maxsize=16)
def load_telnyx_public_key(public_key_b64: str) -> Ed25519PublicKey:
    """Decode the account's Ed25519 public key (base64 of 32 bytes, from the Telnyx portal).

    Call it at start-up to fail fast on a bad ``TELNYX_PUBLIC_KEY``; ``verify_telnyx`` calls it
    too (cached) and treats a bad key as "not verified".

    Raises:
        ConfigurationError: the value is not base64 of a 32-byte key.
    """
    raw = _b64decode(public_key_b64)
    if raw is None or len(raw) != 32:
        raise ConfigurationError("the Telnyx public key must be the base64 of a 32-byte Ed25519 key")
    return Ed25519PublicKey.from_public_bytes(raw)


def _unix_seconds(text: str) -> int | None:
    # Strict ASCII digits: int() would also accept " 1_700 " and non-ASCII digits, which would
    # then be signed differently from what we compared.
    if 0 < len(text) <= 12 and text.isascii() and text.isdigit():
        return int(text)
    return None


def verify_telnyx(
    body: bytes,
    signature_b64: str | None,
    timestamp: str | None,
    public_key_b64: str,
    *,
    tolerance_s: float = TELNYX_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Check a Telnyx webhook (``telnyx-signature-ed25519`` + ``telnyx-timestamp`` headers).

    The signed message is ``b"<timestamp>|" + raw body`` (telnyx-python
    ``lib/webhook_verification.py``). A timestamp more than ``tolerance_s`` from ``now`` fails,
    which bounds how long a captured webhook can be replayed.

    Returns:
        True only for a valid, fresh signature. Never raises on bad input, including a bad key.
    """
    if signature_b64 is None or timestamp is None:
        return False
    sent_at = _unix_seconds(timestamp)
    current = time.time() if now is None else now
    if sent_at is None or not abs(current - sent_at) <= tolerance_s:
        return False
    signature = _b64decode(signature_b64)
    if signature is None or len(signature) != 64:
        return False
    try:
        key = load_telnyx_public_key(public_key_b64)
        key.verify(signature, _utf8(timestamp) + b"|" + bytes(body))
    except (ConfigurationError, InvalidSignature):
        return False
    return True


def verify_telnyx_stream_token(presented: str | None, expected: str) -> bool:
    """Compare the ``x-telnyx-streaming-auth-token`` (header or ``connected`` frame) in constant time.

    Telnyx does not sign the upgrade; it echoes the ``stream_auth_token`` you set when starting
    the stream. An empty expected token never matches, so a missing setting fails closed.
    """
    if not presented or not expected:
        return False
    return _same(presented, expected)
