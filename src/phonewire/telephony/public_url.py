"""The URL a provider signed, rebuilt from what the server saw (``public_url``).

Signature checks (``phonewire.telephony.signatures``) need the URL as the provider called it;
behind a TLS-terminating proxy the server sees another one. Sans-I/O: strings and mappings in,
a string out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

__all__ = ["DEFAULT_PORTS", "public_url", "split_url"]

#: Default port per scheme, dropped from a rebuilt host (WebSocket schemes included).
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# Inputs are attacker-controlled; cap them before doing any work on them.
_MAX_HEADER_VALUE_CHARS = 1024
_SAFE_FORWARDED_HOST = re.compile(r"(?:[A-Za-z0-9._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
_PATH_SAFE = "/!$&'()*+,;=:@-._~%"


def split_url(url: str) -> tuple[str, str, str] | None:
    """(scheme, netloc, rest) split on the text itself, so nothing else in the URL is normalised."""
    scheme, sep, after = url.partition("://")
    if not sep:
        return None
    ends = [i for i in (after.find(c) for c in "/?#") if i >= 0]
    end = min(ends, default=len(after))
    return scheme, after[:end], after[end:]


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
        host = name if port in (None, DEFAULT_PORTS.get(scheme)) else f"{name}:{port}"
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
    split = split_url(url)
    if not trust_forwarded or split is None:
        return url
    scheme, netloc, rest = split
    forwarded_host = _forwarded(headers, "x-forwarded-host")
    if forwarded_host and _SAFE_FORWARDED_HOST.fullmatch(forwarded_host):
        netloc = forwarded_host
    scheme = _forwarded_scheme(scheme, _forwarded(headers, "x-forwarded-proto"))
    return f"{scheme}://{netloc}{rest}"
