"""Plivo: ``X-Plivo-Signature-V3`` HMAC-SHA256 (webhooks *and* the upgrade); legacy V2."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs, urlparse, urlunparse

from phonewire.telephony.public_url import split_url as _split_url
from phonewire.telephony.signatures._common import (
    _MAX_HEADER_VALUE_CHARS,
    Params,
    _b64decode,
    _hmac_b64,
    _same,
    _utf8,
    _values,
)


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
