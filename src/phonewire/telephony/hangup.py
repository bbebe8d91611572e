"""Performs the hang-up a serializer describes: bounded, retried once, never blocking.

One ``httpx.AsyncClient`` per event loop is shared by every call in the process (a fresh
client per call, as Pipecat does, pays a TLS handshake each time). Each attempt is
bounded by ``timeout``; a 429, a 5xx or a network error earns one retry after a short
pause; "already ended" counts as success. The caller runs this in a background task and
bounds its own wait, so shutdown never waits on a slow provider for more than a few
seconds.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

import httpx

from phonewire.serializers.base import HangupOutcome, HangupRequest

__all__ = ["perform_hangup", "shared_http_client"]

logger = logging.getLogger("phonewire.hangup")

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()
RETRY_PAUSE_SECS = 0.25


def shared_http_client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
        _clients[loop] = client
    return client


async def _attempt(request: HangupRequest, timeout: float) -> HangupOutcome:
    try:
        response = await shared_http_client().request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.form,
            json=request.json,
            timeout=timeout,
        )
    except (httpx.HTTPError, OSError) as exc:
        logger.warning("- hang-up %s %s failed: %s", request.method, _path(request.url), type(exc).__name__)
        return HangupOutcome.RETRY
    outcome = request.interpret(response.status_code, response.content)
    logger.info("= hang-up %s %s -> %d (%s)", request.method, _path(request.url), response.status_code, outcome.value)
    return outcome


async def perform_hangup(request: HangupRequest, *, timeout: float = 3.0, retries: int = 1) -> HangupOutcome:
    """Run the request; returns DONE, ALREADY_ENDED, or the last failure."""
    outcome = HangupOutcome.FAILED
    for attempt in range(retries + 1):
        outcome = await _attempt(request, timeout)
        if outcome is not HangupOutcome.RETRY or attempt == retries:
            break
        await asyncio.sleep(RETRY_PAUSE_SECS)
    return outcome


def _path(url: str) -> str:
    # Log the path only: the host is fine, but query strings could carry tokens.
    return url.split("?", 1)[0]
