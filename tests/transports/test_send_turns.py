"""The transport's single send path: one message at a time, in arrival order, and a
waiting sender that is cancelled or whose audio was interrupted never blocks the others."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from phonewire.serializers.twilio import TwilioFrameSerializer
from phonewire.transports import FastAPIWebsocketParams, FastAPIWebsocketTransport
from phonewire.transports.asgi import ASGI_SCOPE_KEY


class SlowPeer:
    """A raw ASGI send that holds each message until the test lets it through."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.gate = asyncio.Event()
        self.in_flight = asyncio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        self.in_flight.set()
        await self.gate.wait()
        self.sent.append(message["text"])


def _transport(peer: SlowPeer) -> FastAPIWebsocketTransport:
    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    scope = {"type": "websocket", "path": "/ws", "headers": [], ASGI_SCOPE_KEY: (receive, peer.send)}
    ws = WebSocket(scope, receive, peer.send)
    ws.application_state = ws.client_state = WebSocketState.CONNECTED
    transport = FastAPIWebsocketTransport(ws, FastAPIWebsocketParams(serializer=TwilioFrameSerializer("MZ")))
    transport.use_raw_channel()
    return transport


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_concurrent_sends_go_out_one_at_a_time_in_arrival_order() -> None:
    async def main() -> tuple[list[str], list[bool]]:
        peer = SlowPeer()
        transport = _transport(peer)
        first = asyncio.create_task(transport.send("1"))
        await peer.in_flight.wait()
        others = [asyncio.create_task(transport.send(str(i))) for i in range(2, 6)]
        await _settle()
        assert peer.sent == []  # everyone waits behind the message in flight
        peer.gate.set()
        results = await asyncio.gather(first, *others)
        return peer.sent, results

    sent, results = asyncio.run(main())
    assert sent == ["1", "2", "3", "4", "5"]
    assert all(results)


def test_a_cancelled_waiter_does_not_block_the_senders_behind_it() -> None:
    async def main() -> tuple[list[str], bool]:
        peer = SlowPeer()
        transport = _transport(peer)
        first = asyncio.create_task(transport.send("1"))
        await peer.in_flight.wait()
        doomed = asyncio.create_task(transport.send("2"))
        last = asyncio.create_task(transport.send("3"))
        await _settle()
        doomed.cancel()
        peer.gate.set()
        await asyncio.wait_for(asyncio.gather(first, last), 2)
        return peer.sent, doomed.cancelled()

    sent, cancelled = asyncio.run(main())
    assert sent == ["1", "3"] and cancelled


def test_audio_from_before_an_interruption_is_dropped_when_its_turn_comes() -> None:
    async def main() -> tuple[list[str], list[bool]]:
        peer = SlowPeer()
        transport = _transport(peer)
        first = asyncio.create_task(transport.send("clear"))
        await peer.in_flight.wait()
        stale = asyncio.create_task(transport.send("old audio", transport.audio_generation))
        await _settle()
        transport.audio_generation += 1  # the interruption
        fresh = asyncio.create_task(transport.send("new audio", transport.audio_generation))
        peer.gate.set()
        results = await asyncio.gather(first, stale, fresh)
        return peer.sent, results

    sent, results = asyncio.run(main())
    assert sent == ["clear", "new audio"]
    assert results == [True, False, True]
