"""FakeElevenLabsServer from a raw client: every message it sends is a valid multi-context
response (elevenlabs-python's types), the alignment matches the audio, auth is checked, and
the 5-context limit and the inactivity timeout are enforced with ElevenLabs' errors."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from phonewire.services.elevenlabs.protocol import ElevenLabsProtocol
from phonewire.services.websocket_tts_protocol import WordTimes
from phonewire.testing.fakes import FakeElevenLabsServer
from phonewire.testing.fakes.elevenlabs_server import LIMIT_MESSAGE
from phonewire.testing.fakes.elevenlabs_validate import validate_client_message, validate_server_message


def _protocol(fake: FakeElevenLabsServer, **kw: Any) -> ElevenLabsProtocol:
    return ElevenLabsProtocol(
        api_key="test-key",
        voice_id="voice-1",
        model="eleven_flash_v2_5",
        sample_rate=8000,
        encoding="mulaw",
        base_url=fake.base_url,
        **kw,
    )


async def _send(ws: ClientConnection, messages: list[str]) -> None:
    for m in messages:
        validate_client_message(json.loads(m))
        await ws.send(m)


async def _until_final(ws: ClientConnection, context_id: str) -> list[dict[str, Any]]:
    out = []
    async with asyncio.timeout(5):
        while True:
            msg = json.loads(await ws.recv())
            out.append(msg)
            if msg.get("isFinal") and msg.get("contextId") == context_id:
                return out


def test_every_message_is_a_valid_sdk_response_and_the_alignment_matches_the_audio() -> None:
    async def main(fake: FakeElevenLabsServer) -> list[dict[str, Any]]:
        p = _protocol(fake, generation_config={"chunk_length_schedule": [50]})
        async with connect(p.url(), additional_headers=p.headers()) as ws:
            await _send(ws, p.open_context("c1"))
            await _send(ws, p.send_text("c1", "Hello there my good friend, your parcel left our depot "))
            await _send(ws, p.send_text("c1", "and is on its way to you today."))
            await _send(ws, p.flush("c1"))
            return await _until_final(ws, "c1")

    with FakeElevenLabsServer(chunk_ms=40) as fake:
        messages = asyncio.run(main(fake))
        ctx = fake.contexts["c1"]
        query = fake.conns[1].query
    for msg in messages:
        validate_server_message(msg)
    assert query["model_id"] == "eleven_flash_v2_5" and query["output_format"] == "ulaw_8000"
    # the client's parser, fed the fake's messages, finds each word where the fake put it
    p = ElevenLabsProtocol(api_key="k", voice_id="v", model="m", sample_rate=8000, encoding="mulaw")
    p.open_context("c1")
    words = [w for m in messages for e in p.parse(json.dumps(m)) if isinstance(e, WordTimes) for w in e.words]
    assert [w for w, _ in words] == [w.word for w in ctx.words]
    assert all(abs(start - w.start_ms) <= 1 for (_, start), w in zip(words, ctx.words, strict=True))
    audio = sum(len(base64.b64decode(m["audio"])) for m in messages if m.get("audio"))
    assert abs(audio / 8 - ctx.words[-1].end_ms) <= 1  # μ-law 8 kHz: 8 bytes a ms
    assert len(ctx.generated) >= 2  # the 50-character schedule generated before the flush


def test_the_key_is_checked_at_the_handshake_or_in_the_first_message() -> None:
    async def main(fake: FakeElevenLabsServer) -> dict[str, Any]:
        url = _protocol(fake).url()
        with pytest.raises(InvalidStatus):
            async with connect(url, additional_headers={"xi-api-key": "bad"}):
                pass
        async with connect(url) as ws:  # no header: the first message must carry it
            await ws.send(json.dumps({"text": " ", "context_id": "c", "xi_api_key": "test-key"}))
            await ws.send(json.dumps({"text": "Hi there. ", "context_id": "c", "flush": True}))
            await ws.send(json.dumps({"context_id": "c", "close_context": True}))
            await _until_final(ws, "c")
        async with connect(url) as ws:
            await ws.send(json.dumps({"text": " ", "context_id": "c"}))
            return dict(json.loads(await ws.recv()))

    with FakeElevenLabsServer() as fake:
        error = asyncio.run(main(fake))
    assert error["error"] == "auth_error" and error["code"] == 1008


def test_a_sixth_context_is_refused_with_elevenlabs_error_and_a_closed_one_frees_its_slot() -> None:
    async def main(fake: FakeElevenLabsServer) -> tuple[dict[str, Any], int | None]:
        p = _protocol(fake)
        async with connect(p.url(), additional_headers=p.headers()) as ws:
            for i in range(5):
                await _send(ws, p.open_context(f"c{i}"))
            await _send(ws, p.cancel("c0"))  # closed before any flush: stops, then isFinal
            await _until_final(ws, "c0")
            await _send(ws, p.open_context("c5"))  # the freed slot
            await _send(ws, p.open_context("c6"))  # a sixth open context
            error = json.loads(await ws.recv())
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return error, ws.close_code

    with FakeElevenLabsServer() as fake:
        error, code = asyncio.run(main(fake))
        peak = fake.peak_active
    validate_server_message(error)
    assert error == {"message": LIMIT_MESSAGE, "error": "max_active_conversations", "code": 1008}
    assert code == 1008 and peak == 5


def test_the_inactivity_timeout_closes_an_idle_socket_and_keepalives_prevent_it() -> None:
    async def idle(fake: FakeElevenLabsServer, keepalive: bool) -> tuple[dict[str, Any] | None, float]:
        p = _protocol(fake)
        started = time.monotonic()
        async with connect(p.url(), additional_headers=p.headers()) as ws:
            await _send(ws, p.open_context("c"))
            if not keepalive:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                return msg, time.monotonic() - started
            for _ in range(8):  # 0.8 s, well past the 0.3 s timeout: real time must pass
                await _send(ws, p.keepalive())
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.1)
            return None, time.monotonic() - started

    with FakeElevenLabsServer(inactivity_timeout_s=0.3) as fake:
        error, waited = asyncio.run(idle(fake, keepalive=False))
        kept, lived = asyncio.run(idle(fake, keepalive=True))
        closed_by = [c.closed_by for c in fake.conns.values()]
    assert error is not None and error["error"] == "input_timeout_exceeded" and waited >= 0.3
    validate_server_message(error)
    assert kept is None and lived >= 0.8
    assert closed_by[0] == "input_timeout_exceeded" and closed_by[1] != "input_timeout_exceeded"


def test_close_socket_lets_a_flushed_context_finish_then_closes() -> None:
    async def main(fake: FakeElevenLabsServer) -> tuple[list[dict[str, Any]], int | None]:
        p = _protocol(fake)
        out = []
        async with connect(p.url(), additional_headers=p.headers()) as ws:
            await _send(ws, p.open_context("c"))
            await _send(ws, p.send_text("c", "One more thing."))
            await _send(ws, p.flush("c"))
            await _send(ws, p.goodbye())
            with pytest.raises(ConnectionClosed):
                while True:
                    out.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            return out, ws.close_code

    with FakeElevenLabsServer(realtime=4.0) as fake:
        messages, code = asyncio.run(main(fake))
    assert messages[-1] == {"isFinal": True, "contextId": "c"} and code == 1000
    assert any(m.get("audio") for m in messages)
