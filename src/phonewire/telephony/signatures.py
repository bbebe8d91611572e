"""Provider request signatures: is this webhook, or this WebSocket upgrade, really from the provider?

Without these checks anyone who can reach the bot's URL can open a media stream, spend the
bot's speech and LLM budget, and feed it a forged call id that phonewire would later hang up
*with the operator's own provider credentials* (docs/security.md has the threat model).

Everything here is sans-I/O and synchronous: the caller passes the URL, the parameters, the raw
body and the header values; the functions answer. ``verify_*`` functions return ``False`` for
anything that is not a valid signature and never raise on hostile input (the property tests in
tests/telephony enforce that). The Vonage JWT check is the exception: it returns the verified
claims, so a failure raises ``SignatureError``.

All comparisons are constant-time (``hmac.compare_digest`` on bytes). Nothing here logs, and no
exception message contains a secret.

Per provider (details in docs/security.md and the provider references cited on each function):

* Twilio: ``X-Twilio-Signature`` = base64 HMAC-SHA1 (or HMAC-SHA256 under a Webhooks Rule) of the
  URL followed by the sorted form fields. WebSocket upgrade: the URL only.
* Telnyx: Ed25519 over ``"<telnyx-timestamp>|<raw body>"``; the upgrade carries a static
  ``x-telnyx-streaming-auth-token`` instead.
* Plivo: ``X-Plivo-Signature-V3`` HMAC-SHA256 (webhooks *and* the upgrade); legacy V2.
* Vonage: an HS256 JWT in ``Authorization: Bearer``; we also mint the RS256 application JWT the
  Vonage REST API wants for hang-ups.
* Exotel signs nothing. The operator puts HTTP Basic credentials in the applet's URL
  (``https://user:pass@host/...``, sent as ``Authorization: Basic``): ``verify_basic_auth``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, quote, urlparse, urlsplit, urlunparse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from phonewire.exceptions import ConfigurationError, PhonewireError

__all__ = [
    "TELNYX_TOLERANCE_S",
    "VONAGE_MAX_AGE_S",
    "Params",
    "SignatureError",
    "TwilioSignatureSettings",
    "jwt_signature_bytes",
    "load_telnyx_public_key",
    "parse_twilio_signature_settings",
    "plivo_v2_signature",
    "plivo_v3_matched_signature",
    "plivo_v3_signature",
    "public_url",
    "signature_bytes",
    "twilio_signature",
    "verify_plivo_v2",
    "verify_plivo_v3",
    "verify_plivo_v3_websocket",
    "verify_telnyx",
    "verify_telnyx_stream_token",
    "verify_twilio",
    "verify_basic_auth",
    "verify_vonage_jwt",
    "vonage_application_jwt",
    "vonage_query_payloads",
]

Params = Mapping[str, str | Sequence[str]]
"""Form or query fields: one value, or several for a repeated name."""

TELNYX_TOLERANCE_S = 300.0
"""telnyx-python's TIMESTAMP_TOLERANCE_SECONDS: older (or newer) webhooks are replays or bad clocks."""

VONAGE_MAX_AGE_S = 300.0
"""How far a Vonage JWT's ``iat`` may be from our clock; same window as Telnyx, for the same reason."""

# Twilio's validators try the URL with and without the scheme's default port because "signature
# generation on the back end is inconsistent" (twilio-node webhooks.ts). WebSocket schemes are
# added because the Media Streams upgrade is signed over the wss:// URL.
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_TWILIO_DIGESTS: dict[str, Callable[..., Any]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
_TWILIO_ALGORITHMS = {"HMAC_SHA1": "sha1", "HMAC_SHA256": "sha256"}

# Inputs are attacker-controlled; cap them before doing any work on them.
_MAX_JWT_CHARS = 16 * 1024
_MAX_HEADER_VALUE_CHARS = 1024
_HOST_PORT = re.compile(r"(?P<host>\[[^\]]*\]|[^:\[\]]*)(?::(?P<port>[0-9]*))?")
_SAFE_FORWARDED_HOST = re.compile(r"(?:[A-Za-z0-9._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
_B64URL_CHARS = re.compile(r"[A-Za-z0-9_-]*")
_PATH_SAFE = "/!$&'()*+,;=:@-._~%"


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


def _split_url(url: str) -> tuple[str, str, str] | None:
    """(scheme, netloc, rest) split on the text itself, so nothing else in the URL is normalised."""
    scheme, sep, after = url.partition("://")
    if not sep:
        return None
    ends = [i for i in (after.find(c) for c in "/?#") if i >= 0]
    end = min(ends, default=len(after))
    return scheme, after[:end], after[end:]


# --------------------------------------------------------------------------- Twilio


@dataclass(frozen=True, slots=True)
class TwilioSignatureSettings:
    """What ``X-Twilio-Webhooks-Signature-Settings`` says about the signature.

    ``key`` names the SharedKey that signed (pick its secret; useful during rotation);
    ``algorithm`` is ``"sha1"``, ``"sha256"``, or None when Twilio named an algorithm we do not
    know, in which case the request must be rejected.
    """

    key: str | None
    algorithm: str | None


def parse_twilio_signature_settings(header: str | None) -> TwilioSignatureSettings:
    """Read the Webhooks-Rule header (``key=…,algorithm=HMAC_SHA256``).

    No header means the classic scheme: the account auth token and HMAC-SHA1. A header without
    a recognised ``algorithm`` yields ``algorithm=None`` (fail closed rather than guess).
    Source: twilio-node examples/WebhookSignatureValidation.md.
    """
    if not header:
        return TwilioSignatureSettings(key=None, algorithm="sha1")
    fields: dict[str, str] = {}
    for item in header[:_MAX_HEADER_VALUE_CHARS].split(","):
        name, sep, value = item.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    algorithm = _TWILIO_ALGORITHMS.get(fields.get("algorithm", "").upper())
    return TwilioSignatureSettings(key=fields.get("key") or None, algorithm=algorithm)


def twilio_signature(
    url: str,
    params: Params | None,
    auth_token: str,
    *,
    algorithm: str = "sha1",
) -> str:
    """Compute ``X-Twilio-Signature`` for ``url`` and form ``params``.

    The signed string is the URL exactly as Twilio requested it (query string included) followed
    by ``name + value`` for every field, names sorted, each name's values sorted with duplicates
    dropped (twilio-python ``RequestValidator.compute_signature``). JSON webhooks and WebSocket
    upgrades are signed over the URL alone: pass ``params=None``.

    Args:
        url: The full URL Twilio requested.
        params: Decoded form fields, or None.
        auth_token: The account auth token, or a Webhooks-Rule SharedKey secret.
        algorithm: ``"sha1"`` (default) or ``"sha256"`` (Webhooks Rule ``HMAC_SHA256``).

    Raises:
        ConfigurationError: ``algorithm`` is not one Twilio uses.
    """
    digest = _TWILIO_DIGESTS.get(algorithm)
    if digest is None:
        raise ConfigurationError(f"unsupported Twilio signature algorithm {algorithm!r}")
    return _hmac_b64(auth_token, _utf8(_twilio_signed_string(url, params)), digest)


def _twilio_signed_string(url: str, params: Params | None) -> str:
    fields = params or {}
    parts = [url]
    for name in sorted(fields):
        parts.extend(name + value for value in sorted(set(_values(fields[name]))))
    return "".join(parts)


def _twilio_url_variants(url: str) -> list[str]:
    """The URL as given, without its port, and with the default port when it had none.

    Mirrors twilio-python/twilio-node ``validate``: they strip any port and add the default one,
    because Twilio's signer is inconsistent about ports. wss/ws use 443/80 like https/http.
    """
    variants = [url]
    split = _split_url(url)
    if split is None:
        return variants
    scheme, netloc, rest = split
    userinfo, at, hostport = netloc.rpartition("@")
    match = _HOST_PORT.fullmatch(hostport)
    if match is None:
        return variants
    prefix = f"{scheme}://{userinfo}{at}{match['host']}"
    if match["port"] is not None:
        variants.append(prefix + rest)
    elif (default := _DEFAULT_PORTS.get(scheme.lower())) is not None:
        variants.append(f"{prefix}:{default}{rest}")
    return variants


def _query_values(url: str, name: str) -> list[str]:
    try:
        query = urlsplit(url).query
    except ValueError:
        return []
    return parse_qs(query, keep_blank_values=True).get(name, [])


def verify_twilio(
    url: str,
    params: Params | None,
    signature: str | None,
    auth_token: str,
    *,
    body: bytes | None = None,
    algorithm: str | None = "sha1",
) -> bool:
    """Check ``X-Twilio-Signature`` on a webhook or a Media Streams WebSocket upgrade.

    * Form POST: pass the decoded form fields as ``params``.
    * GET: the fields are already in the URL's query string; pass ``params=None``.
    * JSON POST: Twilio adds ``bodySHA256=<hex sha256 of the body>`` to the URL and signs the URL
      alone. Pass the raw ``body``; it must hash to that value. A ``body`` with no
      ``bodySHA256`` in the URL, or a ``bodySHA256`` with no ``body``, fails: an unsigned body
      is not accepted as signed.
    * WebSocket upgrade: pass the exact ``<Stream url>`` (``wss://…``) and ``params=None``.

    The URL is also tried without its port and with the scheme's default port, as Twilio's
    own validators do. Under a Webhooks Rule, pass the SharedKey secret as ``auth_token`` and
    the algorithm from ``parse_twilio_signature_settings`` (None, meaning unknown, fails).

    Returns:
        True only for a valid signature. Never raises on bad input.
    """
    digest = _TWILIO_DIGESTS.get(algorithm or "")
    if not signature or not auth_token or digest is None:
        return False
    body_hashes = _query_values(url, "bodySHA256")
    if body_hashes or body is not None:
        if body is None or len(body_hashes) != 1:
            return False
        if not _same(body_hashes[0].lower(), hashlib.sha256(body).hexdigest()):
            return False
        params = None
    expected = [
        _hmac_b64(auth_token, _utf8(_twilio_signed_string(candidate, params)), digest)
        for candidate in _twilio_url_variants(url)
    ]
    return _any_same([signature.strip()], expected)


# --------------------------------------------------------------------------- Telnyx


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


# --------------------------------------------------------------------------- Plivo


def _plivo_base_url(url: str) -> tuple[str, str]:
    """``scheme://netloc/path`` and the raw query, exactly as plivo-python rebuilds them."""
    parts = urlparse(url)
    return urlunparse((parts.scheme, parts.netloc, parts.path, "", "", "")), parts.query


def _plivo_sorted_query(fields: Mapping[str, Sequence[str]]) -> str:
    return "&".join("&".join(f"{name}={value}" for value in sorted(fields[name])) for name in sorted(fields))


def _plivo_v3_string(method: str, url: str, params: Params | None) -> str:
    """The string plivo-python ``signature_v3.py`` signs, minus the ``.nonce`` suffix."""
    base, raw_query = _plivo_base_url(url)
    query = parse_qs(raw_query, keep_blank_values=True)
    fields = {name: _values(value) for name, value in (params or {}).items()}
    if method.upper() == "GET":
        fields.update(query)  # URL query values win, as dict.update does in the SDK
        merged = _plivo_sorted_query(fields)
        return f"{base}?{merged}" if merged else base
    sorted_query = _plivo_sorted_query(query)
    if not fields:
        return f"{base}?{sorted_query}" if sorted_query else base
    dot = "." if sorted_query else ""
    posted = "".join(name + value for name in sorted(fields) for value in sorted(fields[name]))
    return f"{base}?{sorted_query}{dot}{posted}"


def _plivo_messages(text: str) -> list[bytes]:
    """UTF-8 of ``text``, plus the double-encoded form Plivo's SDKs produce.

    plivo-python turns the UTF-8 bytes of the signed string (form fields, nonce) back into text
    one byte per character and encodes that again; plivo-node does the same to the URL. So a
    non-ASCII character is signed twice-encoded by the SDKs. What Plivo's servers do is
    undocumented; accepting both costs one HMAC and changes nothing for ASCII.
    """
    once = _utf8(text)
    twice = once.decode("latin-1").encode("utf-8")
    return [once] if twice == once else [once, twice]


def plivo_v3_signature(method: str, url: str, params: Params | None, nonce: str, auth_token: str) -> str:
    """Compute ``X-Plivo-Signature-V3`` the way Plivo's SDKs do (not the docs page snippet).

    GET: the URL's query merged with ``params``, sorted, as ``?k=v&k2=v2``. POST: the sorted
    query, then ``.`` if there was one, then ``name+value`` for the sorted form fields. Signed
    as base64 HMAC-SHA256 of ``"<that>.<nonce>"`` (protocols.md §3.6).
    """
    message = _utf8(f"{_plivo_v3_string(method, url, params)}.{nonce}")
    return _hmac_b64(auth_token, message, hashlib.sha256)


def verify_plivo_v3(
    method: str,
    url: str,
    params: Params | None,
    nonce: str | None,
    signature_header: str | None,
    auth_token: str,
) -> bool:
    """Check ``X-Plivo-Signature-V3`` with ``X-Plivo-Signature-V3-Nonce``.

    The header may hold several comma-separated signatures (one per auth token Plivo knows for
    the account); any match is enough. Never raises on bad input.
    """
    return plivo_v3_matched_signature(method, url, params, nonce, signature_header, auth_token) is not None


def plivo_v3_matched_signature(
    method: str,
    url: str,
    params: Params | None,
    nonce: str | None,
    signature_header: str | None,
    auth_token: str,
) -> bytes | None:
    """``verify_plivo_v3``, answering *which* signature matched: its decoded bytes, or None.

    The header may carry several signatures, and whatever else a replayer appends to it; the
    one that verified (with the nonce, which it covers) identifies the signed request, so
    replay memory keys on that. Every presented value is compared with every expected one
    (constant time). Never raises on bad input.
    """
    if not signature_header or nonce is None or not auth_token:
        return None
    try:
        signed = f"{_plivo_v3_string(method, url, params)}.{nonce}"
    except ValueError:  # urlparse rejects e.g. an unbalanced "[" in the host
        return None
    expected = [_hmac_b64(auth_token, message, hashlib.sha256) for message in _plivo_messages(signed)]
    presented = [part.strip() for part in signature_header[:_MAX_HEADER_VALUE_CHARS].split(",")]
    matched: str | None = None
    for candidate in presented:
        hit = False
        for value in expected:
            hit |= _same(candidate, value)
        if hit and matched is None:
            matched = candidate
    return None if matched is None else _b64decode(matched)


def verify_plivo_v3_websocket(
    url: str,
    nonce: str | None,
    signature_header: str | None,
    auth_token: str,
    *,
    configured_url: str | None = None,
) -> bool:
    """Check the V3 signature on a Plivo audio-stream WebSocket upgrade (a GET, no body).

    Which scheme Plivo signs for the stream URL is undocumented (plivo-stream-sdk-node rebuilds
    ``http(s)://host/path``), so this tries ``url`` as given, with ``wss://`` and with
    ``https://``, and ``configured_url`` (the text of your ``<Stream>`` element) when given.
    """
    candidates = [url]
    split = _split_url(url)
    if split is not None:
        _, netloc, rest = split
        candidates += [f"wss://{netloc}{rest}", f"https://{netloc}{rest}"]
    if configured_url:
        candidates.append(configured_url)
    results = [verify_plivo_v3("GET", c, None, nonce, signature_header, auth_token) for c in candidates]
    return any(results)


def plivo_v2_signature(url: str, nonce: str, auth_token: str) -> str:
    """Legacy ``X-Plivo-Signature-V2``: base64 HMAC-SHA256 of ``scheme://netloc/path + nonce``."""
    base, _ = _plivo_base_url(url)
    return _hmac_b64(auth_token, _utf8(base + nonce), hashlib.sha256)


def verify_plivo_v2(url: str, nonce: str | None, signature: str | None, auth_token: str) -> bool:
    """Check ``X-Plivo-Signature-V2`` with ``X-Plivo-Signature-V2-Nonce``. Never raises on bad input.

    V2 ignores the query and the body, so prefer V3 when Plivo sends both.
    """
    if not signature or nonce is None or not auth_token:
        return False
    try:
        expected = plivo_v2_signature(url, nonce, auth_token)
    except ValueError:
        return False
    return _same(signature.strip(), expected)


# --------------------------------------------------------------------------- Vonage


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


@lru_cache(maxsize=4)
def _rsa_private_key(private_key_pem: str | bytes) -> rsa.RSAPrivateKey:
    data = private_key_pem.encode("utf-8") if isinstance(private_key_pem, str) else private_key_pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError("the Vonage private key is not an unencrypted PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("the Vonage private key must be an RSA key (RS256)")
    return key


def vonage_application_jwt(
    application_id: str,
    private_key_pem: str | bytes,
    *,
    now: float | None = None,
    ttl_s: float = 300,
    jti: str | None = None,
) -> str:
    """Mint the RS256 application JWT that authenticates calls to the Vonage Voice REST API.

    Claims: ``application_id``, ``iat``, ``exp = iat + ttl_s`` and a unique ``jti`` (Vonage
    rejects a reused one). Short-lived on purpose: the token is only needed for one hang-up.

    Raises:
        ConfigurationError: empty application id, non-positive ``ttl_s``, or a key that is not
            an unencrypted PEM RSA private key.
    """
    if not application_id:
        raise ConfigurationError("a Vonage application id is required")
    if not (ttl_s > 0 and math.isfinite(ttl_s)):
        raise ConfigurationError("ttl_s must be a positive number of seconds")
    key = _rsa_private_key(private_key_pem)
    issued_at = int(time.time() if now is None else now)
    claims = {
        "application_id": application_id,
        "iat": issued_at,
        "exp": issued_at + math.ceil(ttl_s),
        "jti": jti or str(uuid.uuid4()),
    }
    header = {"alg": "RS256", "typ": "JWT"}
    segments = [_b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)]
    signing_input = ".".join(segments).encode("ascii")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode('ascii')}.{_b64url(signature)}"


# --------------------------------------------------------------------------- HTTP Basic (Exotel)


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


# --------------------------------------------------------------------------- public URL


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works on plain dicts as well as Starlette ``Headers``."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _forwarded(headers: Mapping[str, str], name: str) -> str | None:
    """First (client-facing) element of a possibly comma-separated X-Forwarded-* header."""
    value = _header(headers, name)
    if not value or len(value) > _MAX_HEADER_VALUE_CHARS:
        return None
    return value.split(",")[0].strip() or None


def _forwarded_scheme(scheme: str, proto: str | None) -> str:
    secure = {"https": True, "wss": True, "http": False, "ws": False}.get((proto or "").lower())
    if secure is None:
        return scheme
    if scheme.lower() in ("ws", "wss"):
        return "wss" if secure else "ws"
    return "https" if secure else "http"


def _scope_url(scope: Mapping[str, Any]) -> str:
    """Rebuild the request URL from an ASGI scope, keeping the path's original percent-encoding."""
    default_scheme = "ws" if scope.get("type") == "websocket" else "http"
    scheme = str(scope.get("scheme") or default_scheme)
    host = None
    for key, value in scope.get("headers") or ():
        if key.lower() == b"host":
            host = value.decode("latin-1")
            break
    if host is None and scope.get("server"):
        name, port = scope["server"]
        host = name if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{name}:{port}"
    raw_path = scope.get("raw_path")
    if isinstance(raw_path, bytes) and raw_path:
        path = raw_path.decode("latin-1")
    else:
        path = quote(str(scope.get("path") or "/"), safe=_PATH_SAFE)
    query = scope.get("query_string") or b""
    return f"{scheme}://{host or ''}{path}" + (f"?{query.decode('latin-1')}" if query else "")


def public_url(
    scope_or_request_url: str | Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    trust_forwarded: bool,
) -> str:
    """Rebuild the URL the provider signed, as seen from the internet.

    Behind a TLS-terminating proxy (ngrok, a load balancer, Kubernetes ingress) the server sees
    ``http://``/``ws://`` while the provider signed ``https://``/``wss://``, so signatures fail
    unless the public URL is rebuilt. Rules:

    * ``trust_forwarded=False`` (the default you should want when clients reach the server
      directly): the URL is returned as the server saw it; ``X-Forwarded-*`` is ignored, because
      any client can send it.
    * ``trust_forwarded=True``: only when *every* request passes through a proxy you control
      that sets (not appends to) ``X-Forwarded-Proto``/``X-Forwarded-Host``. Then:

      - ``X-Forwarded-Proto: https`` (or ``wss``) makes the scheme ``https``, or ``wss`` for a
        WebSocket request; ``http``/``ws`` make it ``http``/``ws``; other values are ignored.
      - ``X-Forwarded-Host`` replaces the host (and port) when it is a plain ``host[:port]``;
        anything else is ignored.
      - With several comma-separated values the first (client-facing) one is used.
      - ``X-Forwarded-Port``, ``X-Forwarded-Prefix`` and RFC 7239 ``Forwarded`` are not read.
        If the proxy rewrites the path or port, verify against the URL you configured at the
        provider instead of a rebuilt one.

    The path, query and everything else are kept byte for byte. Port differences are handled
    by the verifiers (Twilio's validators try with and without the default port).

    Args:
        scope_or_request_url: The request URL as a string (``str(request.url)``), or the ASGI
            scope, which is better because it keeps the path's percent-encoding (``raw_path``).
        headers: The request headers (any mapping; looked up case-insensitively).
        trust_forwarded: Whether to honour ``X-Forwarded-Proto``/``X-Forwarded-Host``.
    """
    if isinstance(scope_or_request_url, str):
        url = scope_or_request_url
    else:
        url = _scope_url(scope_or_request_url)
    split = _split_url(url)
    if not trust_forwarded or split is None:
        return url
    scheme, netloc, rest = split
    forwarded_host = _forwarded(headers, "x-forwarded-host")
    if forwarded_host and _SAFE_FORWARDED_HOST.fullmatch(forwarded_host):
        netloc = forwarded_host
    scheme = _forwarded_scheme(scheme, _forwarded(headers, "x-forwarded-proto"))
    return f"{scheme}://{netloc}{rest}"
