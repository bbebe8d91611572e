"""FakeDeepgramServer speaks the live protocol: a raw websockets client, every message SDK-validated."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from phonewire.audio.g711 import pcm_to_ulaw
from phonewire.audio.wav import read_wav
from phonewire.testing.fakes import FakeDeepgramServer, SlowConnect
from phonewire.testing.fakes.deepgram_validate import validate_client_message, validate_server_message
from phonewire.testing.script import builtin_recording

QUERY = "model=nova-3&encoding=mulaw&sample_rate=8000&interim_results=true&endpointing=300&utterance_end_ms=1000"
HELLO = pcm_to_ulaw(read_wav(builtin_recording("hello"))[0])


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _open(fake: FakeDeepgramServer, query: str = QUERY, key: str | None = None) -> Any:
    headers = {"Authorization": f"Token {key or fake.api_key}"}
    return await connect(f"{fake.base_url}/v1/listen?{query}", additional_headers=headers, proxy=None)


async def _drain(ws: Any) -> list[dict[str, Any]]:
    out = []
    try:
        async with asyncio.timeout(5):
            async for message in ws:
                out.append(json.loads(message))
    except ConnectionClosed:
        pass
    return out


def test_an_utterance_gets_interims_an_endpointed_final_and_utterance_end() -> None:
    async def main(fake: FakeDeepgramServer) -> list[dict[str, Any]]:
        async with await _open(fake) as ws:
            for i in range(0, len(HELLO), 160):
                await ws.send(HELLO[i : i + 160])
            await ws.send(b"\xff" * 8 * 1500)  # 1.5 s of line silence: endpointing, then UtteranceEnd
            await ws.send(json.dumps({"type": "CloseStream"}))
            return await _drain(ws)

    with FakeDeepgramServer(transcripts=["I would like to know my order status."]) as fake:
        messages = run(main(fake))
        rec = fake.connections[0]
    kinds = [m["type"] for m in messages]
    assert kinds[-1] == "Metadata" and "UtteranceEnd" in kinds
    results = [m for m in messages if m["type"] == "Results"]
    assert not results[0]["is_final"] and results[-1]["is_final"] and results[-1]["speech_final"]
    assert results[-1]["channel"]["alternatives"][0]["transcript"] == "I would like to know my order status."
    for message in messages:
        validate_server_message(message)
    assert rec.is_mulaw and bytes(rec.audio) == HELLO + b"\xff" * 12000 and rec.close_code == 1000


def test_finalize_answers_at_once_and_an_empty_final_when_nothing_is_pending() -> None:
    async def main(fake: FakeDeepgramServer) -> list[dict[str, Any]]:
        async with await _open(fake) as ws:
            await ws.send(json.dumps({"type": "Finalize"}))
            empty = json.loads(await asyncio.wait_for(ws.recv(), 2))
            await ws.send(HELLO[:4000])
            await ws.send(json.dumps({"type": "Finalize"}))
            finals = [empty]
            while len(finals) < 2:
                message = json.loads(await asyncio.wait_for(ws.recv(), 2))
                if message.get("is_final"):
                    finals.append(message)
            return finals

    with FakeDeepgramServer(transcripts=["hello there"]) as fake:
        empty, final = run(main(fake))
    assert empty["from_finalize"] and empty["channel"]["alternatives"][0]["transcript"] == ""
    assert final["from_finalize"] and final["channel"]["alternatives"][0]["transcript"]
    validate_server_message(empty)
    validate_server_message(final)


@pytest.mark.parametrize(
    ("query", "key", "status"),
    [
        pytest.param(QUERY, "wrong", 401, id="bad-key"),
        pytest.param("encoding=mulaw", None, 400, id="no-sample-rate"),
        pytest.param("interim_results=yes", None, 400, id="bad-bool"),
        pytest.param("utterance_end_ms=1000", None, 400, id="utterance-end-without-interims"),
        pytest.param("colour=blue", None, 400, id="unknown-parameter"),
    ],
)
def test_bad_handshakes_are_refused_with_dg_error(query: str, key: str | None, status: int) -> None:
    async def main(fake: FakeDeepgramServer) -> InvalidStatus:
        with pytest.raises(InvalidStatus) as caught:
            await _open(fake, query, key)
        return caught.value

    with FakeDeepgramServer() as fake:
        error = run(main(fake))
    assert error.response.status_code == status and error.response.headers["dg-error"]


def test_an_empty_binary_frame_closes_with_data_0000_and_text_audio_gets_a_schema_error() -> None:
    async def main(fake: FakeDeepgramServer) -> list[dict[str, Any]]:
        async with await _open(fake) as ws:
            await ws.send("not audio, not json")
            error = json.loads(await asyncio.wait_for(ws.recv(), 2))
            await ws.send(b"")
            return [error, *await _drain(ws)]

    with FakeDeepgramServer() as fake:
        [error] = run(main(fake))
        rec = fake.connections[0]
    assert error["type"] == "Error" and error["variant"] == "SchemaError"
    validate_server_message(error)
    assert (rec.close_code, rec.close_reason[:9]) == (1008, "DATA-0000")


def test_a_slow_connect_holds_the_handshake() -> None:
    async def main(fake: FakeDeepgramServer) -> float:
        started = time.monotonic()
        async with await _open(fake):
            return time.monotonic() - started

    with FakeDeepgramServer() as fake:
        fake.fail_next(SlowConnect(0.5))
        assert run(main(fake)) >= 0.5


def test_client_messages_match_the_sdk_types() -> None:
    from phonewire.services.deepgram.live_protocol import CLOSE_STREAM, FINALIZE, KEEPALIVE

    for message in (KEEPALIVE, FINALIZE, CLOSE_STREAM):
        validate_client_message(json.loads(message))
