"""Audio goes in as Twilio μ-law and comes back out, content intact."""

from __future__ import annotations

import asyncio

import pytest

from echo_app import make_app
from phonewire.audio.analysis import dominant_frequency, tone
from server_harness import serve
from twilio_client import TwilioTestClient


@pytest.mark.parametrize("raw", [False, True], ids=["starlette", "raw-asgi"])
def test_a_tone_echoed_through_a_real_server_keeps_its_frequency(raw: bool) -> None:
    """The same with and without RawWebSocketMiddleware (the transport's direct line to uvicorn)."""

    async def main() -> None:
        app, calls = make_app(raw_channel=raw)
        async with serve(app) as hostport:
            client = await TwilioTestClient.connect(hostport)
            await client.handshake()
            sender = asyncio.create_task(client.stream_audio(tone(440, 1.0, 8000)))
            packets = await client.collect_media(3.0, until_silence=0.5)
            await sender
            assert (calls[0].transport.raw_receive is not None) is raw
            await client.close()
        audio = b"".join(p for _, p in packets)
        assert len(audio) >= 2 * 8000 * 0.9
        assert abs(dominant_frequency(audio, 8000) - 440) < 5

    asyncio.run(main())
