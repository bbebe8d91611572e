"""The shipped example works as documented: TwiML webhook and an echoing media stream."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx

from phonewire.audio.analysis import dominant_frequency, tone
from support.server_harness import serve
from support.wire import WireClient

sys.path.insert(0, str(Path(__file__).parents[2]))
from examples.twilio_echo_bot import app


def test_the_example_answers_twiml_and_echoes_the_caller() -> None:
    async def main() -> tuple[str, bytes]:
        async with serve(app) as hostport:
            async with httpx.AsyncClient() as http:
                twiml = (await http.post(f"http://{hostport}/twiml", data={"CallSid": "CA1"})).text
            client = await WireClient.connect(hostport, respond=False)
            await client.handshake()
            sender = asyncio.create_task(client.stream_audio(tone(500, 0.6, 8000)))
            packets = await client.collect_media(3.0, until_silence=0.5)
            await sender
            await client.close()
        return twiml, b"".join(p for _, p in packets)

    twiml, audio = asyncio.run(main())
    assert '<Connect><Stream url="wss://127.0.0.1:' in twiml and twiml.endswith("</Response>")
    assert abs(dominant_frequency(audio, 8000) - 500) < 5
