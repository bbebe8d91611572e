"""Issue 11 finding 8: the web server's own limits, through a real uvicorn on 127.0.0.1.

Each test reproduces one review finding against ``create_app`` served with
``uvicorn_config_kwargs(config)`` (what ``phonewire serve`` uses): trickled headers,
oversized headers, huge opening messages, idle sockets holding call slots, multi-byte text
frames counted as characters, and invalid UTF-8 frames logging a traceback each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.processors import EchoProcessor
from phonewire.server import ServerConfig, create_app
from phonewire.server.web_server import uvicorn_config_kwargs
from support.server_harness import serve
from support.wire import WireClient, twilio


async def echo_bot(transport: Any, call: Any) -> None:
    task = PipelineTask(Pipeline([transport.input(), EchoProcessor(), transport.output()]))
    await PipelineRunner(handle_sigint=False).run(task)


@asynccontextmanager
async def limited_server(config: ServerConfig) -> AsyncIterator[str]:
    async with serve(create_app(echo_bot, config), **uvicorn_config_kwargs(config)) as hostport:
        yield hostport


def run(config: ServerConfig, scenario: Callable[[str], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with limited_server(config) as hostport:
            return await scenario(hostport)

    return asyncio.run(main())


async def close_code(client: WireClient, timeout: float = 5.0) -> int | None:
    try:
        async with asyncio.timeout(timeout):
            while True:
                await client.ws.recv()
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


async def client_from(hostport: str, source: str = "127.0.0.1") -> WireClient:
    ws = await connect(f"ws://{hostport}/ws", compression=None, open_timeout=5, close_timeout=2, local_addr=(source, 0))
    return WireClient(ws, twilio(), respond=False)


async def metrics(hostport: str) -> str:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"http://{hostport}/metrics")).text


async def echoes(client: WireClient) -> bool:
    await client.media(b"\0\0" * 160)
    return (await client.recv_event("media"))["event"] == "media"


def open_config(**kw: Any) -> ServerConfig:
    return ServerConfig(stream_secret=None, require_stream_token=False, **kw)


# --- headers ----------------------------------------------------------------------------


def test_a_request_whose_headers_trickle_in_is_closed_at_the_header_deadline() -> None:
    async def scenario(hostport: str) -> tuple[bytes, float, str]:
        host, port = hostport.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        started = time.monotonic()
        writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")

        async def trickle() -> None:
            for i in range(100):  # the attack itself: one header line every 50 ms, for ever
                writer.write(f"X-{i}: y\r\n".encode())
                await asyncio.sleep(0.05)

        trickler = asyncio.create_task(trickle())
        async with asyncio.timeout(4):
            rest = await reader.read()
        trickler.cancel()
        writer.close()
        return rest, time.monotonic() - started, await metrics(hostport)

    rest, elapsed, text = run(open_config(header_timeout=0.5), scenario)
    assert rest == b""  # closed, nothing served
    assert 0.4 <= elapsed < 3
    assert 'phonewire_http_connections_closed_total{reason="header_timeout"}' in text


def test_an_oversized_header_is_refused_with_400() -> None:
    async def scenario(hostport: str) -> bytes:
        host, port = hostport.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        # 32 KiB: twice the limit, small enough to be read whole (no reset from unread data).
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (32 << 10) + b"\r\n\r\n")
        async with asyncio.timeout(4):
            head = await reader.read()
        writer.close()
        return head

    assert run(open_config(), scenario).startswith(b"HTTP/1.1 400")


def test_one_address_cannot_hold_more_unfinished_requests_than_max_pending_per_client() -> None:
    async def scenario(hostport: str) -> tuple[list[bool], bool]:
        host, port = hostport.split(":")
        held = [await asyncio.open_connection(host, int(port)) for _ in range(3)]
        extra_reader, extra_writer = await asyncio.open_connection(host, int(port))
        async with asyncio.timeout(4):
            cut = await extra_reader.read() == b""
        # The held ones still answer once they finish their request.
        answers = []
        for reader, writer in held:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            async with asyncio.timeout(4):
                answers.append((await reader.read()).startswith(b"HTTP/1.1 200"))
            writer.close()
        extra_writer.close()
        return answers, cut

    answers, cut = run(open_config(max_pending_per_client=3), scenario)
    assert cut and answers == [True, True, True]


# --- WebSocket messages -----------------------------------------------------------------


def test_a_huge_opening_message_is_refused_by_the_server_before_it_is_buffered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario(hostport: str) -> tuple[int | None, str]:
        client = await client_from(hostport)
        try:
            await client.send("x" * (4 << 20))  # 4 MiB; the review sent 15 MiB x 10 sockets
            code = await close_code(client)
        except ConnectionClosed as exc:  # refused while we were still sending
            code = exc.rcvd.code if exc.rcvd else None
        async with httpx.AsyncClient() as http:
            health = (await http.get(f"http://{hostport}/healthz")).json()["status"]
        return code, health

    assert run(open_config(), scenario) == (1009, "ok")
    assert "opening message of" not in caplog.text  # uvicorn refused it (ws_max_size): the app never held it


def test_the_message_limit_counts_utf8_bytes_not_characters(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(hostport: str) -> int | None:
        client = await WireClient.connect(hostport, respond=False)
        await client.handshake()
        await client.send('{"event":"media","pad":"' + "€" * 30_000 + '"}')  # 30k characters, 90k bytes
        return await close_code(client)

    async def main() -> int | None:
        # The plain harness (16 MiB ws_max_size): the transport's own limit must trip.
        async with serve(create_app(echo_bot, open_config())) as hostport:
            return await scenario(hostport)

    assert asyncio.run(main()) == 1009
    assert "exceeds max_message_bytes" in caplog.text


def test_invalid_utf8_frames_close_with_1007_and_log_one_line_without_a_traceback() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    async def scenario(hostport: str) -> tuple[list[int | None], str]:
        codes = []
        for _ in range(3):
            client = await WireClient.connect(hostport, respond=False)
            await client.handshake()
            client.ws.protocol.send_frame(Frame(Opcode.TEXT, b'{"event":"media","x":"\xff"}'))
            client.ws.send_data()
            codes.append(await close_code(client))
        return codes, await metrics(hostport)

    handler = Keep(logging.DEBUG)
    logging.getLogger("uvicorn.error").addHandler(handler)
    try:
        codes, text = run(open_config(), scenario)
    finally:
        logging.getLogger("uvicorn.error").removeHandler(handler)
    assert codes == [1007, 1007, 1007]
    utf8 = [r for r in records if "UTF-8" in r.getMessage()]
    assert len(utf8) <= 1 and all(r.exc_info is None for r in utf8)
    assert not any(r.exc_info for r in records)
    assert "phonewire_invalid_utf8_frames_total" in text


# --- call slots and pending handshakes ---------------------------------------------------


def test_idle_sockets_hold_no_call_slot_and_genuine_calls_are_served() -> None:
    async def scenario(hostport: str) -> tuple[bool, int | None, str]:
        idle = [await client_from(hostport) for _ in range(3)]  # never say who they are
        genuine = await client_from(hostport, "127.0.0.2")
        await genuine.handshake()
        served = await echoes(genuine)
        late = await client_from(hostport, "127.0.0.3")
        await late.handshake()
        refused = await close_code(late)  # the one slot is the genuine call's
        text = await metrics(hostport)
        for c in [*idle, genuine]:
            await c.close()
        return served, refused, text

    served, refused, text = run(open_config(max_calls=1, max_pending_per_client=4), scenario)
    assert served and refused == 1013
    assert "phonewire_active_calls 1" in text and "phonewire_pending_handshakes 3" in text


def test_pending_handshakes_are_capped_per_client_address_and_in_total() -> None:
    async def scenario(hostport: str) -> tuple[int | None, int | None, bool]:
        idle = [await client_from(hostport) for _ in range(2)]
        per_client = await close_code(await client_from(hostport))  # a third from 127.0.0.1
        idle.append(await client_from(hostport, "127.0.0.2"))  # 3 pending: the total
        total = await close_code(await client_from(hostport, "127.0.0.3"))
        await idle.pop().close()
        genuine = await client_from(hostport, "127.0.0.3")
        await genuine.handshake()
        served = await echoes(genuine)
        for c in [*idle, genuine]:
            await c.close()
        return per_client, total, served

    config = open_config(max_pending_per_client=2, max_pending_handshakes=3)
    assert run(config, scenario) == (1013, 1013, True)


# --- request bodies (second review, D4) ----------------------------------------------------

STALLED_WEBHOOK = (
    b"POST /webhooks/twilio HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 60000\r\nExpect: 100-continue\r\n\r\n"
)


async def stalled_body(hostport: str, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A webhook request whose headers are complete and whose body never comes. Returns once
    the server has parsed the headers and the app is waiting for the body (``100 Continue``)."""
    host, port = hostport.split(":")
    reader, writer = await asyncio.open_connection(host, int(port), local_addr=(source, 0))
    writer.write(STALLED_WEBHOOK)
    async with asyncio.timeout(4):
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100")
    return reader, writer


def test_a_webhook_body_that_never_arrives_gets_408_at_the_body_deadline() -> None:
    async def scenario(hostport: str) -> tuple[bytes, float, str]:
        started = time.monotonic()
        reader, writer = await stalled_body(hostport)
        async with asyncio.timeout(4):
            answer = await reader.read()
        writer.close()
        return answer, time.monotonic() - started, await metrics(hostport)

    answer, elapsed, _ = run(open_config(twilio_auth_token="tok", webhook_body_timeout=0.5), scenario)
    assert answer.startswith(b"HTTP/1.1 408")
    assert 0.4 <= elapsed < 3


def test_requests_with_unfinished_bodies_count_against_max_pending_per_client() -> None:
    async def scenario(hostport: str) -> tuple[bool, bool]:
        held = [await stalled_body(hostport) for _ in range(3)]
        host, port = hostport.split(":")
        extra_reader, extra_writer = await asyncio.open_connection(host, int(port))
        async with asyncio.timeout(4):
            cut = await extra_reader.read() == b""  # a fourth request in flight from 127.0.0.1
        async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2")) as other:
            served = (await other.get(f"http://{hostport}/healthz")).status_code == 200
        extra_writer.close()
        for _, writer in held:
            writer.close()
        return cut, served

    config = open_config(twilio_auth_token="tok", max_pending_per_client=3, webhook_body_timeout=30)
    assert run(config, scenario) == (True, True)


def test_a_body_trickling_into_any_route_is_closed_at_the_body_deadline() -> None:
    async def scenario(hostport: str) -> tuple[bytes, float, str]:
        host, port = hostport.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        started = time.monotonic()
        # /healthz answers (405) without reading the body; the client goes on sending it slowly.
        writer.write(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")

        async def trickle() -> None:
            for _ in range(200):
                writer.write(b"a")
                await asyncio.sleep(0.05)

        trickler = asyncio.create_task(trickle())
        async with asyncio.timeout(4):
            data = await reader.read()  # to the end: the server closed the connection
        trickler.cancel()
        writer.close()
        return data, time.monotonic() - started, await metrics(hostport)

    data, elapsed, text = run(open_config(webhook_body_timeout=0.5), scenario)
    assert elapsed < 3  # closed by the body deadline (0.5 s + 1 s), not held while bytes trickle
    assert 'phonewire_http_connections_closed_total{reason="body_timeout"}' in text


# --- signed upgrades have their own pending pool (second review, D5) -----------------------


def test_a_signed_upgrade_is_served_while_unsigned_idle_sockets_fill_the_pending_pool() -> None:
    from phonewire.telephony.signatures import twilio_signature

    async def scenario(hostport: str) -> tuple[int | None, bool]:
        idle = [await client_from(hostport, f"127.0.0.{2 + i // 2}") for i in range(4)]  # 2 addresses x 2
        unsigned = await close_code(await client_from(hostport, "127.0.0.9"))  # the pool is full
        signature = twilio_signature(f"ws://{hostport}/ws", None, "tok")
        genuine = await WireClient.connect(hostport, respond=False, headers={"X-Twilio-Signature": signature})
        await genuine.handshake()
        served = await echoes(genuine)
        for c in [*idle, genuine]:
            await c.close()
        return unsigned, served

    config = open_config(twilio_auth_token="tok", max_pending_handshakes=4, max_pending_per_client=2)
    assert run(config, scenario) == (1013, True)  # unsigned: the documented residual
