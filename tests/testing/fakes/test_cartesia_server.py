"""FakeCartesiaServer: every message it sends is a valid Cartesia websocket response (SDK
types); auth is checked; the context expiry is enforced."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pydantic
import pytest
from cartesia.types.websocket_response import WebsocketResponse
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from phonewire.services.cartesia.protocol import CartesiaProtocol
from phonewire.testing.fakes.cartesia_server import FakeCartesiaServer

_RESPONSE: pydantic.TypeAdapter[object] = pydantic.TypeAdapter(WebsocketResponse)


def _protocol(fake: FakeCartesiaServer) -> CartesiaProtocol:
    return CartesiaProtocol(
        api_key="test-key", voice_id="v", model="sonic-3", sample_rate=8000, encoding="mulaw", base_url=fake.base_url
    )


async def _speak(fake: FakeCartesiaServer, pause_s: float = 0.0) -> list[dict[str, object]]:
    p = _protocol(fake)
    out = []
    async with connect(p.url(), additional_headers=p.headers()) as ws:
        await ws.send(p.send_text("c1", "Hello there ")[0])
        if pause_s:
            await asyncio.sleep(pause_s)  # the expiry is what is tested: real time must pass
        await ws.send(p.send_text("c1", "friend. ")[0])
        await ws.send(p.flush("c1")[0])
        async with asyncio.timeout(5):
            while True:
                msg = json.loads(await ws.recv())
                out.append(msg)
                if msg.get("done"):
                    return out


def test_every_message_sent_is_a_valid_sdk_response_and_timestamps_match_the_audio() -> None:
    with FakeCartesiaServer() as fake:
        messages = asyncio.run(_speak(fake))
        ctx = fake.contexts["c1"]
    for msg in messages:
        _RESPONSE.validate_python(msg)
    assert messages[-1]["type"] == "done"
    assert [w.word for w in ctx.words] == ["Hello", "there", "friend."]
    audio = sum(len(base64.b64decode(str(m["data"]))) for m in messages if m["type"] == "chunk")
    assert abs(audio / 8 - ctx.words[-1].end_ms) <= 1  # μ-law 8 kHz: 8 bytes a ms


def test_a_wrong_key_is_refused() -> None:
    async def main(fake: FakeCartesiaServer) -> None:
        with pytest.raises(InvalidStatus):
            async with connect(f"{fake.base_url}/tts/websocket", additional_headers={"X-API-Key": "bad"}):
                pass

    with FakeCartesiaServer() as fake:
        asyncio.run(main(fake))


def test_input_after_the_context_expired_is_an_error() -> None:
    with FakeCartesiaServer(expiry_s=0.2) as fake:
        started = time.monotonic()
        messages = asyncio.run(_speak(fake, pause_s=0.5))
    assert time.monotonic() - started >= 0.5
    errors = [m for m in messages if m["type"] == "error"]
    assert errors and errors[0]["error_code"] == "context_expired"
    _RESPONSE.validate_python(errors[0])
