"""What both pages share: credential checks, a mint rate limit, static files and SSE framing.

Why here and small: the softphone and the console are optional routes on the same server as
the providers' webhooks, so every check is constant-time, every response says ``no-store``,
and the pages load nothing from anywhere but this server (a strict CSP: no CDN, no fonts).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

from fastapi import Request, Response

from phonewire.server.call_events import Subscription

__all__ = ["TokenBucket", "credential_ok", "same_origin", "sse_stream", "static_response"]

#: Files the pages may load, by name: nothing else under static/ is served.
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
STATIC_FILES = frozenset(
    {
        "pages.css",
        "softphone.js",
        "console.js",
        "sse.js",
        "chart.js",
        "capture-worklet.js",
        "playback-worklet.js",
    }
)
#: Same origin only; no inline script; the microphone for this page only.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Permissions-Policy": "microphone=(self), camera=(), geolocation=()",
}
#: Seconds of quiet before an SSE comment keeps proxies from closing the stream.
KEEPALIVE_SECS = 15.0


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def credential_ok(request: Request, secret: str | None, *, basic: bool) -> bool:
    """``Authorization: Bearer <secret>``, or (``basic``) HTTP Basic with ``secret`` as the
    password and any user name. Constant-time; no secret configured means no access."""
    if not secret:
        return False
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    offered: str | None = None
    if scheme.lower() == "bearer":
        offered = value
    elif basic and scheme.lower() == "basic" and len(value) <= 1024:
        try:
            offered = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError, ValueError):
            offered = None
    if offered is None or len(offered) > 1024:
        return False
    return hmac.compare_digest(_digest(offered), _digest(secret))


def same_origin(request: Request) -> bool:
    """False for a cross-site request (its ``Origin`` names another host than ``Host``)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser's cross-origin fetch (curl, a test client)
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


class TokenBucket:
    """``per_minute`` events a minute, in bursts of up to ``burst``; per process, clock-injectable."""

    def __init__(self, per_minute: int, *, burst: int | None = None, clock: Callable[[], float] = time.monotonic):
        self.rate = max(per_minute, 0) / 60.0
        self.capacity = float(burst if burst is not None else max(1, min(per_minute, 5)))
        self.tokens = self.capacity
        self.clock = clock
        self.stamp = clock()

    def take(self) -> float:
        """0 when allowed now, else the seconds until the next one is."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate if self.rate > 0 else 60.0


def static_response(name: str) -> Response:
    suffix = name[name.rfind(".") :] if "." in name else ""
    if name not in STATIC_FILES:
        return Response(status_code=404)
    path = resources.files("phonewire.server").joinpath("static", name)
    if not path.is_file():
        return Response(status_code=404)
    headers = dict(PAGE_HEADERS)
    headers["Cache-Control"] = "no-cache"
    return Response(path.read_bytes(), media_type=STATIC_TYPES.get(suffix, "application/octet-stream"), headers=headers)


def page_response(name: str) -> Response:
    path = resources.files("phonewire.server").joinpath("static", name)
    return Response(path.read_bytes(), media_type=STATIC_TYPES[".html"], headers=PAGE_HEADERS)


def sse_headers() -> dict[str, str]:
    return {"Cache-Control": "no-store", "X-Accel-Buffering": "no", "X-Content-Type-Options": "nosniff"}


async def sse_stream(
    sub: Subscription,
    first: dict[str, Any],
    *,
    until: Callable[[dict[str, Any]], bool] | None = None,
    max_wait_secs: float | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> AsyncIterator[bytes]:
    """``first`` (a snapshot), then the subscription's events as SSE ``data:`` lines; ends when
    the subscription is dropped, ``until(event)`` says so, or when no event came within
    ``max_wait_secs`` (a call that never started), or once ``stop()`` (the server drains, so
    uvicorn's shutdown does not wait on open pages)."""
    deadline = time.monotonic() + max_wait_secs if max_wait_secs else None
    try:
        yield _frame(first)
        async for event in sub.events(KEEPALIVE_SECS, stop):
            if event is None:
                if deadline is not None and time.monotonic() > deadline:
                    return
                yield b": keepalive\n\n"
                continue
            deadline = None
            yield _frame(event)
            if until is not None and until(event):
                return
    finally:
        sub.close()


def _frame(event: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


def draining(request: Request) -> Callable[[], bool]:
    """``stop`` for ``sse_stream``: true once the app's SIGTERM drain has begun."""
    state = request.app.state
    return lambda: bool(getattr(getattr(state, "drain", None), "draining", False))
