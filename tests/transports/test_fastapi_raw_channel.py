"""The transport's direct line to uvicorn (RawWebSocketMiddleware) behaves exactly like
Starlette's WebSocket methods: Starlette's state kept in step, failures handled the same.
(Calls through a real server both ways: test_fastapi_roundtrip.py and test_fastapi_control.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from phonewire.serializers.twilio import TwilioFrameSerializer
from phonewire.transports import FastAPIWebsocketParams, FastAPIWebsocketTransport, RawWebSocketMiddleware
from phonewire.transports.asgi import ASGI_SCOPE_KEY, raw_channel


def _websocket(send: Any, *, accepted: bool = True) -> WebSocket:
    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    scope = {"type": "websocket", "path": "/ws", "headers": [], ASGI_SCOPE_KEY: (receive, send)}
    ws = WebSocket(scope, receive, send)
    if accepted:
        ws.application_state = ws.client_state = WebSocketState.CONNECTED
    return ws


def _transport(ws: WebSocket) -> FastAPIWebsocketTransport:
    return FastAPIWebsocketTransport(ws, FastAPIWebsocketParams(serializer=TwilioFrameSerializer("MZ")))


def test_a_failed_raw_send_is_a_peer_gone_and_starlette_knows_the_socket_is_closed() -> None:
    async def main() -> tuple[bool, Any, str | None, list[str]]:
        async def send(message: Any) -> None:
            raise OSError("connection reset")

        ws = _websocket(send)
        transport = _transport(ws)
        transport.use_raw_channel()
        fired: list[str] = []
        transport.add_event_handler("on_client_disconnected", lambda t, w: fired.append("gone"))
        transport.hangup_allowed = False
        sent = await transport.send("hello")
        await transport.cleanup()
        return sent, ws.application_state, transport.stats.close_reason, fired

    sent, state, reason, fired = asyncio.run(main())
    assert not sent and reason == "send failed" and fired == ["gone"]
    assert state == WebSocketState.DISCONNECTED


def test_raw_sends_carry_text_and_bytes_as_asgi_messages() -> None:
    async def main() -> list[Any]:
        seen: list[Any] = []

        async def send(message: Any) -> None:
            seen.append(message)

        transport = _transport(_websocket(send))
        transport.use_raw_channel()
        assert await transport.send("text") and await transport.send(b"\x01\x02")
        return seen

    assert asyncio.run(main()) == [
        {"type": "websocket.send", "text": "text"},
        {"type": "websocket.send", "bytes": b"\x01\x02"},
    ]


def test_the_raw_channel_is_not_used_before_the_socket_was_accepted() -> None:
    async def send(message: Any) -> None:
        raise AssertionError("must not be called")

    transport = _transport(_websocket(send, accepted=False))
    transport.use_raw_channel()
    assert transport.raw_receive is None


def test_the_middleware_records_the_channel_for_websockets_only() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(dict(scope))

    async def receive() -> dict[str, Any]:
        return {}

    async def send(message: Any) -> None:
        return None

    async def main() -> None:
        middleware = RawWebSocketMiddleware(app)
        await middleware({"type": "http"}, receive, send)
        await middleware({"type": "websocket"}, receive, send)

    asyncio.run(main())
    assert ASGI_SCOPE_KEY not in seen[0]
    assert seen[1][ASGI_SCOPE_KEY] == (receive, send)
    assert raw_channel(seen[1]) == (receive, send)
    assert raw_channel({ASGI_SCOPE_KEY: "not a channel"}) is None
    assert raw_channel({}) is None
