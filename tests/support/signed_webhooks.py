"""Play each provider's side of a call webhook, signed with the real algorithm.

Every webhook route refuses what it cannot verify, so tests that need an answer sign their
requests here: Twilio HMAC-SHA1, Telnyx Ed25519 (a key generated per test run), Plivo V3
HMAC-SHA256, Vonage HS256 JWT with ``payload_hash``, Exotel HTTP Basic.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import urllib.parse
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from phonewire.telephony.signatures import plivo_v3_signature, twilio_signature

TWILIO_TOKEN = "twilio-auth-token-for-tests"
PLIVO_TOKEN = "plivo-auth-token-for-tests"
VONAGE_SECRET = "vonage-signature-secret-for-tests"
EXOTEL_AUTH = "exotel-user:exotel-pass"
TELNYX_KEY = Ed25519PrivateKey.generate()
TELNYX_PUBLIC = base64.b64encode(TELNYX_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
ACCOUNT_SID = "AC00000000000000000000000000000001"


def credentials() -> dict[str, str]:
    """ServerConfig keyword arguments that configure every provider's webhook verification."""
    return {
        "twilio_auth_token": TWILIO_TOKEN,
        "telnyx_public_key": TELNYX_PUBLIC,
        "plivo_auth_token": PLIVO_TOKEN,
        "vonage_signature_secret": VONAGE_SECRET,
        "exotel_webhook_basic_auth": EXOTEL_AUTH,
    }


def form_body(form: dict[str, str]) -> bytes:
    return urllib.parse.urlencode(form).encode()


def twilio_headers(url: str, form: dict[str, str], token: str = TWILIO_TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": twilio_signature(url, form, token), "Content-Type": FORM}


def telnyx_headers(body: bytes, timestamp: int | None = None, key: Ed25519PrivateKey = TELNYX_KEY) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = key.sign(ts.encode() + b"|" + body)
    return {"telnyx-signature-ed25519": base64.b64encode(signature).decode(), "telnyx-timestamp": ts}


def plivo_headers(method: str, url: str, form: dict[str, str] | None, nonce: str | None = None) -> dict[str, str]:
    nonce = nonce or secrets.token_hex(8)
    return {
        "X-Plivo-Signature-V3": plivo_v3_signature(method, url, form, nonce, PLIVO_TOKEN),
        "X-Plivo-Signature-V3-Nonce": nonce,
    }


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def vonage_jwt(payload: bytes | None, secret: str = VONAGE_SECRET, **claims: Any) -> str:
    """An HS256 JWT like Vonage's signed webhooks; ``payload`` None leaves out ``payload_hash``."""
    body: dict[str, Any] = {"iat": int(time.time()), "jti": secrets.token_hex(8), "iss": "Vonage", "api_key": "k"}
    if payload is not None:
        body["payload_hash"] = hashlib.sha256(payload).hexdigest()
    body.update(claims)
    head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{head}.{_b64url(json.dumps(body).encode())}"
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(sig)}"


def vonage_query_payload(params: dict[str, str]) -> bytes:
    return json.dumps(params, separators=(",", ":")).encode()


def exotel_headers(credentials: str = EXOTEL_AUTH) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


FORM = "application/x-www-form-urlencoded"


async def signed_answer(
    http: httpx.AsyncClient, base: str, provider: str, fields: dict[str, str], *, method: str = "POST"
) -> httpx.Response:
    """Ask ``base`` (``http://host:port``) for the webhook answer, as the provider would."""
    url = f"{base}/webhooks/{provider}"
    if provider == "twilio":
        return await http.post(url, content=form_body(fields), headers=twilio_headers(url, fields))
    if provider == "telnyx":
        body = form_body(fields)
        return await http.post(url, content=body, headers={**telnyx_headers(body), "Content-Type": FORM})
    if provider == "plivo":
        if method == "GET":
            full = f"{url}?{urllib.parse.urlencode(fields)}"
            return await http.get(full, headers=plivo_headers("GET", full, None))
        headers = {**plivo_headers("POST", url, fields), "Content-Type": FORM}
        return await http.post(url, content=form_body(fields), headers=headers)
    if provider == "vonage":
        if method == "GET":
            jwt = vonage_jwt(vonage_query_payload(fields))
            return await http.get(url, params=fields, headers={"Authorization": f"Bearer {jwt}"})
        body = json.dumps(fields).encode()
        headers = {"Authorization": f"Bearer {vonage_jwt(body)}", "Content-Type": "application/json"}
        return await http.post(url, content=body, headers=headers)
    if provider == "exotel":
        return await http.get(url, params=fields, headers=exotel_headers())
    raise ValueError(provider)
