"""Issue 16: a bot audio frame interrupted while its packets are going out sends none of the
rest. A 100 ms ``OutputAudioRawFrame`` (five 20 ms packets) takes the output's inline path;
the socket holds its first packet while the caller barges in; once the socket lets go, the
clear goes out and nothing of that frame follows it. The same for a ``TTSWireAudioFrame``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.websockets import WebSocket, WebSocketState

from phonewire.audio.analysis import tone
from phonewire.audio.g711 import pcm_to_ulaw
from phonewire.frames import InterruptionFrame, OutputAudioRawFrame, StartFrame, TTSWireAudioFrame
from phonewire.serializers.twilio import TwilioFrameSerializer
from phonewire.transports import FastAPIWebsocketParams, FastAPIWebsocketTransport
from phonewire.transports.asgi import ASGI_SCOPE_KEY


class HoldFirstSend:
    """A raw ASGI send that holds the first message until ``release``; the rest pass."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        if not self.held.is_set():
            self.held.set()
            await self.release.wait()
        self.events.append(json.loads(message["text"])["event"])


class ManualClock:
    """Media time that moves only by the transport's own sleeps."""

    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


def _transport(peer: HoldFirstSend, clock: ManualClock) -> FastAPIWebsocketTransport:
    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    scope = {"type": "websocket", "path": "/ws", "headers": [], ASGI_SCOPE_KEY: (receive, peer.send)}
    ws = WebSocket(scope, receive, peer.send)
    ws.application_state = ws.client_state = WebSocketState.CONNECTED
    params = FastAPIWebsocketParams(serializer=TwilioFrameSerializer("MZ"), audio_out_enabled=True)
    transport = FastAPIWebsocketTransport(ws, params, clock=clock, sleep=clock.sleep)
    transport.hangup_allowed = False
    transport.use_raw_channel()
    return transport


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


@pytest.mark.parametrize("kind", ["raw", "wire"])
def test_an_interruption_mid_frame_stops_the_rest_of_its_packets(kind: str) -> None:
    async def main() -> tuple[list[str], int]:
        peer, clock = HoldFirstSend(), ManualClock()
        transport = _transport(peer, clock)
        output = transport.output()
        await output.queue_frame(StartFrame())
        await _settle()  # the pacer task is idle, waiting for audio: the inline path is open
        pcm = tone(440, 0.1, 8000)  # 100 ms: five packets
        if kind == "raw":
            frame: OutputAudioRawFrame = OutputAudioRawFrame(audio=pcm, sample_rate=8000)
        else:
            frame = TTSWireAudioFrame(audio=pcm_to_ulaw(pcm), sample_rate=8000, encoding="mulaw")
        producer = asyncio.create_task(output.queue_frame(frame))
        await asyncio.wait_for(peer.held.wait(), 2)  # packet 1 is on the socket, stuck
        barge_in = asyncio.create_task(output.queue_frame(InterruptionFrame()))
        await _settle()
        peer.release.set()
        await asyncio.wait_for(asyncio.gather(producer, barge_in), 2)
        await _settle()
        for _ in range(20):  # let a pacer send anything still queued, in media time
            await clock.sleep(0.02)
        await transport.cleanup()
        return peer.events, transport.stats.clears_sent

    events, clears = asyncio.run(main())
    assert clears == 1
    assert events[0] == "media" and "clear" in events
    after_clear = events[events.index("clear") + 1 :]
    assert "media" not in after_clear, events
