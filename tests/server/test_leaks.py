"""Issue 11 finding 9: what the server shows to whoever asks, and what its logs keep.

uvicorn logged every request line with its query string - an Exotel stream URL carries the
stream token there, a Vonage answer webhook the caller's number - and FastAPI served
/docs and /openapi.json, a map of every route, to anyone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from phonewire.server import ServerConfig, create_app
from phonewire.server.web_server import redact_path
from support.server_harness import serve

TOKEN = "tok_SuperSecretStreamToken123"
CALLER = "447700900123"
INDIAN = "+919876543210"


async def idle_bot(transport: Any, call: Any) -> None:
    return None


def test_api_docs_are_off_by_default_and_on_when_asked() -> None:
    async def statuses(config: ServerConfig) -> list[int]:
        async with serve(create_app(idle_bot, config)) as hostport, httpx.AsyncClient() as http:
            return [(await http.get(f"http://{hostport}{p}")).status_code for p in ("/docs", "/redoc", "/openapi.json")]

    assert asyncio.run(statuses(ServerConfig())) == [404, 404, 404]
    assert asyncio.run(statuses(ServerConfig(api_docs=True))) == [200, 200, 200]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/ws?sample-rate=8000&phonewireToken={TOKEN}", "/ws?sample-rate=…&phonewireToken=…"),
        (f"/webhooks/vonage?from={CALLER}&to=447700900000&uuid=abc", "/webhooks/vonage?from=…&to=…&uuid=…"),
        (f"/webhooks/exotel?CallSid=x&From=%2B{INDIAN[1:]}", "/webhooks/exotel?CallSid=…&From=…"),
        (f"/calls/{INDIAN}/status", "/calls/…/status"),
        ("/healthz", "/healthz"),
    ],
)
def test_request_paths_are_redacted_for_logs(path: str, expected: str) -> None:
    assert redact_path(path) == expected


def test_uvicorn_logs_neither_stream_tokens_nor_caller_numbers() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    async def main() -> None:
        app = create_app(idle_bot, ServerConfig())
        async with serve(app, log_level="info") as hostport:
            handler = Keep(logging.DEBUG)
            for name in ("uvicorn.access", "uvicorn.error"):
                logging.getLogger(name).addHandler(handler)
            try:
                async with httpx.AsyncClient() as http:
                    await http.get(f"http://{hostport}/webhooks/vonage?from={CALLER}&to=447700900000&uuid=u")
                    await http.get(f"http://{hostport}/healthz?from={CALLER}")
                url = f"ws://{hostport}/ws?sample-rate=8000&phonewireToken={TOKEN}&from_number={INDIAN}"
                try:
                    async with connect(url, open_timeout=5, close_timeout=2) as ws:
                        await ws.close()
                except ConnectionClosed:
                    pass
            finally:
                for name in ("uvicorn.access", "uvicorn.error"):
                    logging.getLogger(name).removeHandler(handler)

    asyncio.run(main())
    lines = [r.getMessage() for r in records]
    assert any("/webhooks/vonage" in line for line in lines), lines  # the lines are there...
    assert any("WebSocket /ws" in line for line in lines), lines
    text = "\n".join(lines)
    for secret in (TOKEN, CALLER, INDIAN, INDIAN[1:]):  # ...without what they used to carry
        assert secret not in text, text
