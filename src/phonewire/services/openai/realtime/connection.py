"""One Realtime WebSocket: connect, configure the session, send and receive events.

Thin I/O over ``websockets``. Why separate from the service: the connection is opened either
by the service at the call's start or, earlier, by a prewarm hook when the webhook arrives
(the phone rings meanwhile) and handed to the call. Every wait is bounded: the TCP/TLS/WS
handshake, ``session.created`` and ``session.updated``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State

from phonewire.exceptions import ConfigurationError
from phonewire.services.openai.realtime.events import (
    BadEvent,
    RealtimeSessionConfig,
    ServerEvent,
    parse_server_event,
    session_update,
)

__all__ = ["RealtimeConnectError", "RealtimeConnection", "open_realtime", "realtime_url"]

logger = logging.getLogger("phonewire.services.openai.realtime")
DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: Largest server message accepted (audio deltas are a few KB; session events larger).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class RealtimeConnectError(Exception):
    """The connection or the session could not be set up (network, auth, bad config)."""


def realtime_url(base_url: str | None, model: str) -> str:
    """As the SDK derives it: ``<base_url>/realtime`` with http->ws, https->wss, ``?model=``."""
    base = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    parts = urlsplit(base)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ConfigurationError(f"OpenAI base_url must be http(s) or ws(s), not {parts.scheme!r}")
    query = "&".join(q for q in (parts.query, urlencode({"model": model})) if q)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/realtime", query, ""))


class RealtimeConnection:
    """An open, configured session. ``session`` is the server's effective config."""

    def __init__(self, ws: ClientConnection, config: RealtimeSessionConfig, session: dict[str, Any]) -> None:
        self.ws = ws
        self.config = config
        self.session = session
        self.opened_at = time.monotonic()
        self.send_timeout_secs = 2.0

    @property
    def age_secs(self) -> float:
        return time.monotonic() - self.opened_at

    async def send(self, text: str) -> None:
        ws = self.ws
        if writes_at_once(ws):
            await ws.send(text)  # written at once: no timer per 20 ms packet (~8 µs each)
            return
        async with asyncio.timeout(self.send_timeout_secs):
            await ws.send(text)

    async def recv(self) -> ServerEvent | BadEvent:
        """The next event (raises ``websockets.ConnectionClosed`` when the socket ends)."""
        return parse_server_event(await self.ws.recv())

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await self.ws.close()

    async def __aenter__(self) -> RealtimeConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def writes_at_once(ws: ClientConnection) -> bool:
    """Whether ``ws.send`` of one text message cannot wait: the connection is open, its
    transport is not paused (write buffer under the high-water mark) and no fragmented send is
    in progress (websockets 13+: then ``send`` writes and returns without blocking). Otherwise
    the caller bounds the send with a timeout, as before; unknown attributes count as "may wait"."""
    return (
        ws.state is State.OPEN
        and getattr(ws, "paused", True) is False
        and getattr(ws, "send_in_progress", True) is None
    )


async def open_realtime(
    config: RealtimeSessionConfig,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    connect_timeout_secs: float = 5.0,
    session_timeout_secs: float = 5.0,
) -> RealtimeConnection:
    """Connect, wait for ``session.created``, send ``session.update``, wait for ``session.updated``."""
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        raise ConfigurationError("OpenAI Realtime needs api_key= or OPENAI_API_KEY (any string for local servers)")
    url = realtime_url(base_url, config.model)
    try:
        async with asyncio.timeout(connect_timeout_secs):
            ws = await connect(url, additional_headers={"Authorization": f"Bearer {key}"}, max_size=MAX_MESSAGE_BYTES)
    except Exception as exc:
        raise RealtimeConnectError(f"connect failed: {type(exc).__name__}: {str(exc)[:120]}") from None
    try:
        async with asyncio.timeout(session_timeout_secs):
            await _expect(ws, "session.created")
            await ws.send(session_update(config))
            updated = await _expect(ws, "session.updated")
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await ws.close()
        if isinstance(exc, TimeoutError):
            raise RealtimeConnectError("no session within the timeout") from None
        if isinstance(exc, Exception):
            raise RealtimeConnectError(f"session failed: {str(exc)[:200]}") from None
        raise
    logger.debug("- realtime session %s open (%s)", updated.get("session", {}).get("id"), config.model)
    return RealtimeConnection(ws, config, updated.get("session") or {})


async def _expect(ws: ClientConnection, kind: str) -> ServerEvent:
    while True:
        event = parse_server_event(await ws.recv())
        if isinstance(event, BadEvent):
            continue
        if event.type == "error":
            raise RealtimeConnectError(f"{event.error_code()}: {event.error_message()}")
        if event.type == kind:
            return event
