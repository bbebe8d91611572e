"""The demo bot greets, reads back DTMF digits, and ends the call with a goodbye on #."""

from __future__ import annotations

import asyncio

from websockets.exceptions import ConnectionClosed

from phonewire.demo.app import make_app
from phonewire.demo.bot import prompt
from phonewire.server import ServerConfig
from support.server_harness import serve
from support.wire import WireClient


async def utterance(client: WireClient, quiet: float = 0.4) -> float:
    """Seconds of bot audio until it pauses for ``quiet`` seconds."""
    packets = await client.collect_media(20.0, until_silence=quiet)
    return sum(len(p) for _, p in packets) / 16000


def test_greeting_digit_read_back_and_a_goodbye_on_pound_that_ends_the_call() -> None:
    async def main() -> tuple[float, float, float, int | None]:
        app = make_app(ServerConfig(vad=None))
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, respond=False)
            await client.handshake()
            greeting = await utterance(client)
            await client.dtmf("7")
            seven = await utterance(client)
            await client.dtmf("#")
            goodbye = await utterance(client, quiet=1.0)
            try:
                async with asyncio.timeout(5):
                    while True:
                        await client.ws.recv()
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
        return greeting, seven, goodbye, code

    greeting, seven, goodbye, code = asyncio.run(main())
    expected = {name: len(prompt(name)[0]) / 16000 for name in ("greeting", "digit_seven", "goodbye")}
    assert abs(greeting - expected["greeting"]) < 0.05
    assert abs(seven - expected["digit_seven"]) < 0.05
    assert abs(goodbye - expected["goodbye"]) < 0.05
    assert code == 1000
