"""Vonage: an HS256 JWT in ``Authorization: Bearer`` on signed webhooks (and the upgrade).

Minting the RS256 application JWT for the REST API is in ``phonewire.telephony.rest_auth``."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from phonewire.telephony.signatures._common import (
    _MAX_JWT_CHARS,
    VONAGE_MAX_AGE_S,
    SignatureError,
    _b64url_decode,
    _same,
    _utf8,
)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} in JWT")


def _json_object(segment: str, what: str) -> dict[str, Any]:
    raw = _b64url_decode(segment)
    try:
        value = json.loads(raw, parse_constant=_reject_constant) if raw is not None else None
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise SignatureError(f"malformed JWT {what}")
    return value


def _finite_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _jwt_parts(token: str | None) -> tuple[str, str, bytes]:
    """(header segment, payload segment, signature bytes); accepts a ``Bearer`` prefix."""
    if not token:
        raise SignatureError("missing JWT")
    token = token.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    parts = token.split(".") if len(token) <= _MAX_JWT_CHARS and token.isascii() else []
    if len(parts) != 3:
        raise SignatureError("malformed JWT")
    signature = _b64url_decode(parts[2])
    if signature is None:
        raise SignatureError("malformed JWT signature")
    return parts[0], parts[1], signature


def jwt_signature_bytes(token: str | None) -> bytes | None:
    """The decoded signature of a JWT (``Bearer`` prefix accepted), or None if malformed.

    One signed JWT has many spellings in an ``Authorization`` header (``bearer  <jwt>``, a
    base64url variant of its last character); its signature bytes are one value.
    """
    try:
        return _jwt_parts(token)[2]
    except SignatureError:
        return None


def _check_fresh(claims: Mapping[str, Any], now: float, max_age_s: float) -> None:
    issued_at = _finite_number(claims.get("iat"))
    if issued_at is None:
        raise SignatureError("JWT has no valid iat claim")
    if now - issued_at > max_age_s:
        raise SignatureError("JWT expired (iat too old)")
    if issued_at - now > max_age_s:
        raise SignatureError("JWT issued in the future")
    if "exp" in claims:
        expires_at = _finite_number(claims["exp"])
        if expires_at is None or now >= expires_at:
            raise SignatureError("JWT expired")


def _check_body(claims: Mapping[str, Any], body: bytes) -> None:
    payload_hash = claims.get("payload_hash")
    if not isinstance(payload_hash, str):
        raise SignatureError("JWT has no payload_hash claim to check the body against")
    if not _same(payload_hash.lower(), hashlib.sha256(body).hexdigest()):
        raise SignatureError("body does not match the JWT payload_hash")


def verify_vonage_jwt(
    token: str | None,
    signature_secret: str,
    *,
    body: bytes | None = None,
    now: float | None = None,
    max_age_s: float = VONAGE_MAX_AGE_S,
) -> dict[str, Any]:
    """Verify a Vonage signed-webhook JWT (``Authorization: Bearer <jwt>``) and return its claims.

    HS256 with the account signature secret; only ``alg: HS256`` is accepted (no ``none``, no
    key confusion). The signature is checked before any JSON is parsed. ``iat`` must be within
    ``max_age_s`` of ``now`` and ``exp``, if present, in the future. When ``body`` is given it
    must hash (hex SHA-256) to the ``payload_hash`` claim, and a token without ``payload_hash``
    is rejected, because the caller asked for the body to be authenticated. For a GET webhook
    or the WebSocket upgrade (``authorization: {"type": "vonage"}``), pass ``body=None``.

    Returns:
        The verified claims (``iat``, ``jti``, ``iss``, ``api_key``, ``application_id``, …).

    Raises:
        SignatureError: anything else, with a message naming the failed check. Nothing else is
            raised, whatever the token holds.
    """
    header_b64, payload_b64, signature = _jwt_parts(token)
    if not signature_secret:
        raise SignatureError("no Vonage signature secret configured")
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    expected = hmac.new(_utf8(signature_secret), signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise SignatureError("bad JWT signature")
    if _json_object(header_b64, "header").get("alg") != "HS256":
        raise SignatureError("JWT algorithm is not HS256")
    claims = _json_object(payload_b64, "claims")
    _check_fresh(claims, time.time() if now is None else now, max_age_s)
    if body is not None:
        _check_body(claims, body)
    return claims


def vonage_query_payloads(pairs: Sequence[tuple[str, str]]) -> list[bytes]:
    """What a GET webhook's ``payload_hash`` may cover: the query as a JSON object.

    Vonage documents the GET payload as "JSON of the query params in received order, no
    whitespace" (protocols.md 5.6) without saying how non-ASCII is written, so both
    ``\\uXXXX`` escapes and raw UTF-8 are offered (one per distinct encoding). Pass the
    result, one at a time, as ``body`` to ``verify_vonage_jwt``: that binds the query
    (``uuid``, ``from``…) to the JWT.

    A query that repeats a name gives no payload at all: as a JSON object it keeps one value
    while a reader of the query may take another (``uuid=victim&uuid=genuine``), so nothing
    it could be hashed to proves which call it names.
    """
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        return []
    obj = dict(pairs)
    variants = [json.dumps(obj, separators=(",", ":"), ensure_ascii=ascii_only) for ascii_only in (True, False)]
    return [_utf8(text) for text in dict.fromkeys(variants)]
