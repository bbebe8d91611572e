"""Credentials for provider REST APIs: HTTP Basic (Twilio, Plivo) and Vonage's RS256 application JWT.

Used by the serializers' hang-up requests and by call control. A leaf module: it imports nothing
of phonewire's but ``exceptions``, and ``cryptography`` only when a Vonage JWT is minted, so a
serializer that imports it stays cheap to import.
"""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from functools import lru_cache
from typing import TYPE_CHECKING

from phonewire.exceptions import ConfigurationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["basic_auth_header", "vonage_application_jwt"]


def basic_auth_header(user: str, secret: str) -> str:
    """``Authorization: Basic base64(user:secret)``."""
    token = base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")
    return f"Basic {token}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@lru_cache(maxsize=4)
def _rsa_private_key(private_key_pem: str | bytes) -> rsa.RSAPrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

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
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode('ascii')}.{_b64url(signature)}"
