"""One /ws route, every provider: auto-detection picks the right one from the opening messages,
and refuses silent and garbage clients cleanly."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from phonewire.audio.analysis import tone
from phonewire.exceptions import HandshakeError
from phonewire.serializers.exotel import ExotelFrameSerializer
from phonewire.serializers.plivo import PlivoFrameSerializer
from phonewire.serializers.raw_pcm import RawPCMSerializer
from phonewire.serializers.telnyx import TelnyxFrameSerializer
from phonewire.serializers.twilio import TwilioFrameSerializer
from phonewire.serializers.vonage import VonageFrameSerializer
from support.calls import assert_tone, wait_until
from support.echo_app import make_app
from support.server_harness import serve
from support.wire import WireClient, exotel, plivo, raw_pcm, telnyx, vonage

CLIENTS: dict[str, tuple[type[Any], type[Any], int]] = {
    "telnyx": (telnyx, TelnyxFrameSerializer, 8000),
    "plivo": (plivo, PlivoFrameSerializer, 8000),
    "exotel": (exotel, ExotelFrameSerializer, 8000),
    "vonage": (vonage, VonageFrameSerializer, 16000),
    "raw_pcm": (raw_pcm, RawPCMSerializer, 16000),
}


async def _twilio_call(hostport: str) -> bytes:
    client = await WireClient.connect(hostport, respond=False)
    await client.handshake()
    sender = asyncio.create_task(client.stream_audio(tone(1000, 0.2, 8000)))
    packets = await client.collect_media(2.0, until_silence=0.25)
    await sender
    await client.close()
    return b"".join(p for _, p in packets)


@pytest.mark.parametrize("provider", ["twilio", *CLIENTS])
def test_a_route_open_to_every_provider_detects_each_one_and_serves_its_call(provider: str) -> None:
    async def main() -> tuple[Any, bytes, int]:
        app, calls = make_app(providers=None)
        async with serve(app) as hostport:
            if provider == "twilio":
                echoed, rate = await _twilio_call(hostport), 8000
            else:
                client_cls, _, rate = CLIENTS[provider]
                client = await WireClient.connect(hostport, client_cls())
                await client.handshake()
                sender = asyncio.create_task(client.stream_audio(tone(1000, 0.2, rate)))
                await client.pump(2.0, idle=0.25)
                await sender
                await client.close()
                assert client.violations == []
                echoed = client.pcm()
            await wait_until(lambda: calls[0].finished, what="the call to finish")
        return calls[0], echoed, rate

    call, echoed, rate = asyncio.run(main())
    expected = TwilioFrameSerializer if provider == "twilio" else CLIENTS[provider][1]
    assert call.transport.call_info.provider == provider
    assert type(call.transport.serializer) is expected
    assert call.transport.stats.protocol_error_count == 0  # nothing of the handshake leaked into the call
    assert_tone(echoed, rate, 1000, 0.2)


@pytest.mark.parametrize(("frame_bytes", "rate"), [(640, 16000), (320, 8000)])
def test_a_binary_first_frame_is_vonage_audio_at_the_rate_its_size_implies(frame_bytes: int, rate: int) -> None:
    async def main() -> tuple[Any, WireClient]:
        app, calls = make_app(providers=None)
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, vonage(sample_rate=rate))
            audio = tone(1000, 0.2, rate)
            assert len(audio[:frame_bytes]) == frame_bytes
            await client.stream_audio(audio)  # audio first, no websocket:connected
            await client.pump(2.0, idle=0.25)
            await client.close()
            await wait_until(lambda: calls[0].finished, what="the call to finish")
        return calls[0], client

    call, client = asyncio.run(main())
    info = call.transport.call_info
    assert info.provider == "vonage"
    assert info.media_format.sample_rate == rate
    assert type(call.transport.serializer) is VonageFrameSerializer
    assert call.transport.stats.audio_in_ms == pytest.approx(200)  # the first frame was kept, not swallowed
    assert_tone(client.pcm(), rate, 1000, 0.2)
    assert client.violations == []


def test_a_client_that_sends_nothing_is_closed_with_1008_after_the_handshake_timeout() -> None:
    async def main() -> tuple[int | None, float, Any]:
        app, calls = make_app(providers=None, handshake_timeout=0.5)
        async with serve(app) as hostport:
            ws = await connect(f"ws://{hostport}/ws", compression=None, open_timeout=5, close_timeout=2)
            t0 = time.monotonic()
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(3.0):
                    await ws.recv()
            elapsed = time.monotonic() - t0
            await wait_until(lambda: calls[0].finished, what="the route to return")
        return ws.close_code, elapsed, calls[0]

    code, elapsed, call = asyncio.run(main())
    assert code == 1008
    assert 0.45 < elapsed < 1.5
    assert isinstance(call.error, HandshakeError) and call.error.close_code == 1008
    assert call.transport is None  # no pipeline was ever built


GARBAGE: list[str | bytes] = [
    "hello",
    "{not json",
    "[1, 2, 3]",
    '{"event": "bogus"}',
    '{"event": "media", "media": {"payload": "AAAA"}}',
    b"\x00\x01\x02",
    b"\x00" * 100,
]


def test_a_client_sending_only_garbage_is_refused_cleanly_and_the_route_keeps_serving() -> None:
    async def main() -> tuple[int | None, str | None, float, Any, bytes]:
        app, calls = make_app(providers=None, handshake_timeout=5.0)
        async with serve(app) as hostport:
            ws = await connect(f"ws://{hostport}/ws", compression=None, open_timeout=5, close_timeout=2)
            t0 = time.monotonic()
            with pytest.raises(ConnectionClosed):
                for i in range(40):
                    await ws.send(GARBAGE[i % len(GARBAGE)])
                async with asyncio.timeout(3.0):
                    await ws.recv()
            elapsed = time.monotonic() - t0
            echoed = await _twilio_call(hostport)  # the next caller is served as usual
        return ws.close_code, ws.close_reason, elapsed, calls[0], echoed

    code, reason, elapsed, call, echoed = asyncio.run(main())
    assert code == 1008 and reason and "unrecognised" in reason
    assert elapsed < 2.0  # refused after a bounded number of messages, not at the timeout
    assert isinstance(call.error, HandshakeError) and call.transport is None
    assert abs(len(echoed) / 16000 - 0.2) < 0.03


@pytest.mark.parametrize(
    "start",
    [
        # Telnyx codec the stream cannot carry
        {
            "event": "start",
            "sequence_number": "1",
            "stream_id": "S1",
            "start": {"call_control_id": "v3:x", "media_format": {"encoding": "OPUS", "sample_rate": 16000}},
        },
        # Exotel sample rate it does not offer
        {
            "event": "start",
            "sequence_number": "1",
            "stream_sid": "MZ1",
            "start": {"stream_sid": "MZ1", "call_sid": "CA1", "media_format": {"sample_rate": "44100"}},
        },
        # Plivo streamId that is not a string
        {"event": "start", "sequenceNumber": 1, "start": {"streamId": 7, "callId": "c"}},
        # Vonage content-type that is not L16
        {"event": "websocket:connected", "content-type": "audio/opus;rate=48000"},
    ],
    ids=["telnyx-opus", "exotel-44k", "plivo-numeric-stream-id", "vonage-opus"],
)
def test_a_malformed_start_message_is_refused_with_1003(start: dict[str, Any]) -> None:
    async def main() -> tuple[int | None, Any]:
        app, calls = make_app(providers=None)
        async with serve(app) as hostport:
            ws = await connect(f"ws://{hostport}/ws", compression=None, open_timeout=5, close_timeout=2)
            await ws.send(json.dumps(start))
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(3.0):
                    await ws.recv()
        return ws.close_code, calls[0]

    code, call = asyncio.run(main())
    assert code == 1003
    assert isinstance(call.error, HandshakeError) and call.error.close_code == 1003
    assert call.transport is None
