"""Each limit trips with its close code and a log line, and refuses nobody else."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.processors import EchoProcessor
from phonewire.server import ServerConfig, create_app
from support.server_harness import serve
from support.wire import WireClient


async def echo_bot(transport: Any, call: Any) -> None:
    task = PipelineTask(Pipeline([transport.input(), EchoProcessor(), transport.output()]))
    await PipelineRunner(handle_sigint=False).run(task)


async def close_code(client: WireClient, timeout: float = 5.0) -> int | None:
    try:
        async with asyncio.timeout(timeout):
            while True:
                await client.ws.recv()
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


def run_with(config: ServerConfig, scenario: Any) -> Any:
    async def main() -> Any:
        async with serve(create_app(echo_bot, config)) as hostport:
            return await scenario(hostport)

    return asyncio.run(main())


def test_an_oversized_message_closes_the_call_with_1009(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(hostport: str) -> int | None:
        client = await WireClient.connect(hostport, respond=False)
        await client.handshake()
        await client.send(json.dumps({"event": "media", "pad": "x" * 70_000}))
        return await close_code(client)

    assert run_with(ServerConfig(), scenario) == 1009
    assert "max_message_bytes" in caplog.text


def test_a_message_flood_closes_the_call_with_1008() -> None:
    async def scenario(hostport: str) -> int | None:
        client = await WireClient.connect(hostport, respond=False)
        await client.handshake()
        for _ in range(200):  # beyond the burst (20/s x 5 s)
            await client.dtmf("1")
        return await close_code(client)

    config = ServerConfig(transport_params={"max_messages_per_second": 20})
    assert run_with(config, scenario) == 1008


def test_a_backlog_within_the_burst_is_not_a_flood() -> None:
    """What a stall of the server's loop looks like from the socket: seconds of a call's packets
    read at once. Within ``max_message_burst_secs`` the call goes on."""

    async def scenario(hostport: str) -> bool:
        client = await WireClient.connect(hostport, respond=False)
        await client.handshake()
        for _ in range(90):  # 4.5 s of 20/s at once
            await client.dtmf("1")
        await client.media(b"\x10\x00" * (client.packet_bytes // 2))
        await client.expect_audio()  # still served: the echo comes back
        return True

    config = ServerConfig(transport_params={"max_messages_per_second": 20})
    assert run_with(config, scenario)


def test_a_silent_client_is_closed_at_the_handshake_deadline_with_1008() -> None:
    async def scenario(hostport: str) -> int | None:
        client = await WireClient.connect(hostport, respond=False)
        return await close_code(client)

    assert run_with(ServerConfig(handshake_timeout=0.5), scenario) == 1008


def test_a_peer_that_stops_sending_is_treated_as_gone_after_the_no_media_timeout() -> None:
    async def scenario(hostport: str) -> int | None:
        client = await WireClient.connect(hostport, respond=False)
        await client.handshake()
        return await close_code(client)

    config = ServerConfig(transport_params={"no_media_timeout_secs": 0.5})
    assert run_with(config, scenario) == 1001


def test_calls_beyond_max_calls_are_refused_politely_with_1013_while_the_first_goes_on() -> None:
    async def scenario(hostport: str) -> tuple[int | None, bool]:
        first = await WireClient.connect(hostport, respond=False)
        await first.handshake()
        await first.media(b"\0\0" * 160)
        await first.recv_event("media")
        second = await WireClient.connect(hostport, respond=False)
        await second.handshake()  # a slot is taken only by an identified stream (issue 11 #8)
        refused = await close_code(second)
        await first.media(b"\0\0" * 160)
        still_up = (await first.recv_event("media"))["event"] == "media"
        await first.close()
        return refused, still_up

    assert run_with(ServerConfig(max_calls=1), scenario) == (1013, True)
