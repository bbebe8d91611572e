"""A direct line to the ASGI server for the per-packet path.

Every message through Starlette's ``WebSocket`` passes three wrappers before it reaches the
server: ``send_text`` -> ``send`` (state checks) -> the exception middleware's ``sender``; a
receive passes its own state checks. They guard against misuse of the ASGI protocol that the
transport cannot commit (it only sends and receives while the socket is open), and at 50
packets a second each way they were ~4 % of a call's CPU (docs/benchmarks.md).

``RawWebSocketMiddleware`` is a pure ASGI middleware: for WebSocket connections it records
the server's own ``receive`` and ``send`` in the scope and changes nothing else. The
transport uses them when they are there and falls back to Starlette's methods when not, so
an app without the middleware works the same, only slower. ``create_app`` installs it; add
it to your own FastAPI app with ``app.add_middleware(RawWebSocketMiddleware)``.

Starlette's connection state is kept in step by the transport (a disconnect received, a
failed send), so closing through Starlette afterwards behaves as it would have.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ASGI_SCOPE_KEY", "RawWebSocketMiddleware", "raw_channel"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: Where the middleware leaves ``(receive, send)`` in a WebSocket connection's scope.
ASGI_SCOPE_KEY = "phonewire.asgi"


class RawWebSocketMiddleware:
    """Records the ASGI server's ``(receive, send)`` in the scope of WebSocket connections."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[ASGI_SCOPE_KEY] = (receive, send)
        await self.app(scope, receive, send)


def raw_channel(scope: Scope) -> tuple[Receive, Send] | None:
    """The server's ``(receive, send)`` recorded by the middleware, or None without it."""
    channel = scope.get(ASGI_SCOPE_KEY)
    if isinstance(channel, tuple) and len(channel) == 2 and all(callable(c) for c in channel):
        return channel
    return None
