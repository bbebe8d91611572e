"""Audio goes in as Twilio μ-law and comes back out, content intact."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from phonewire.audio.analysis import dominant_frequency, tone
from phonewire.frames import BotStoppedSpeakingFrame, PlaybackSource
from support.echo_app import make_app
from support.server_harness import serve
from support.wire import WireClient


@pytest.mark.parametrize("raw", [False, True], ids=["starlette", "raw-asgi"])
def test_a_tone_echoed_through_a_real_server_keeps_its_frequency(raw: bool) -> None:
    """The same with and without RawWebSocketMiddleware (the transport's direct line to uvicorn)."""

    async def main() -> None:
        app, calls = make_app(raw_channel=raw)
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, respond=False)
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


def test_an_echo_with_no_tts_frames_still_ends_its_utterance_when_the_audio_stops() -> None:
    """The utterance-gap timer: a producer of plain audio frames gets a final mark ~100 ms after
    the caller's buffer runs dry, and its echo becomes BotStoppedSpeakingFrame (provider ack)."""

    async def main() -> tuple[list[str], Any, float]:
        app, calls = make_app()
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, respond=False)
            await client.handshake()
            await client.stream_audio(tone(440, 0.5, 8000))  # then the caller goes quiet
            events: list[str] = []
            while True:
                msg = await client.recv(timeout=3.0)
                events.append(msg["event"])
                if msg["event"] == "mark":
                    break
            await client.mark_echo(msg["mark"]["name"])
            await calls[0].wait_until(lambda c: any(isinstance(f, BotStoppedSpeakingFrame) for f, _ in c.tail))
            stopped = next(f for f, _ in calls[0].tail if isinstance(f, BotStoppedSpeakingFrame))
            await client.close()
        return events, stopped, stopped.sent_ms

    events, stopped, sent_ms = asyncio.run(main())
    assert events.count("media") == 25 and events[-1] == "mark"  # every packet, then the final mark
    assert stopped.source is PlaybackSource.PROVIDER_ACK and not stopped.interrupted
    assert abs(sent_ms - 500) < 25
