"""Twilio: ``X-Twilio-Signature`` = base64 HMAC-SHA1 (or HMAC-SHA256 under a Webhooks Rule) of
the URL followed by the sorted form fields. WebSocket upgrade: the URL only."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from phonewire.exceptions import ConfigurationError
from phonewire.telephony.public_url import DEFAULT_PORTS as _DEFAULT_PORTS
from phonewire.telephony.public_url import split_url as _split_url
from phonewire.telephony.signatures._common import (
    _MAX_HEADER_VALUE_CHARS,
    Params,
    _any_same,
    _hmac_b64,
    _same,
    _utf8,
    _values,
)

# Twilio's validators try the URL with and without the scheme's default port because "signature
# generation on the back end is inconsistent" (twilio-node webhooks.ts). WebSocket schemes are
# added because the Media Streams upgrade is signed over the wss:// URL.
_TWILIO_DIGESTS: dict[str, Callable[..., Any]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
_TWILIO_ALGORITHMS = {"HMAC_SHA1": "sha1", "HMAC_SHA256": "sha256"}

_HOST_PORT = re.compile(r"(?P<host>\[[^\]]*\]|[^:\[\]]*)(?::(?P<port>[0-9]*))?")


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
