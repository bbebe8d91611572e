"""Sans-I/O pieces (SSE framing, chunk plans, multipart) and the fake's lifecycle."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionChunk

from phonewire.testing.fakes import (
    ChatStream,
    FakeOpenAIServer,
    Hang,
    TextReply,
    ToolCall,
    ToolCallsReply,
    encode_sse,
    parse_multipart,
    parse_sse,
    split_text,
    validate_response,
)
from testing.fakes.conftest import async_client

texts = st.text(alphabet=st.characters(blacklist_characters="\r", blacklist_categories=("Cs",)), max_size=60)


@given(st.lists(texts, max_size=6))
def test_sse_events_round_trip_through_encode_and_parse(events: list[str]) -> None:
    stream = b"".join(encode_sse(e) for e in events)
    assert parse_sse(b": keep-alive\n\n" + stream) == events


@given(texts, st.one_of(st.none(), st.integers(1, 7)))
def test_split_text_pieces_join_back_to_the_text(text: str, size: int | None) -> None:
    pieces = split_text(text, size)
    assert "".join(pieces) == text and all(pieces)


@given(
    st.text(max_size=40),
    st.lists(
        st.tuples(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), st.text(max_size=16)),
        max_size=3,
        unique_by=lambda t: t[0],
    ),
    st.integers(0, 4).map(lambda n: [1, 255, 2000, 0, 77][n]),
)
def test_chat_stream_chunks_are_valid_and_carry_the_reply(text: str, calls: list[tuple[str, str]], size: int) -> None:
    reply = ToolCallsReply([ToolCall(n, a) for n, a in calls], text=text) if calls else TextReply(text)
    plan = ChatStream(reply, "chatcmpl-x", "m", 1, include_usage=True)
    chunks = [validate_response(ChatCompletionChunk, json.loads(json.dumps(c))) for c in plan.chunks()]
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == text
    args: dict[int, str] = {}
    for chunk in chunks:
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            args[tc.index] = args.get(tc.index, "") + (tc.function.arguments or "" if tc.function else "")
    assert [args[i] for i in sorted(args)] == [a for _, a in calls]
    assert chunks[-2].choices[0].finish_reason == ("tool_calls" if calls else "stop")
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


@given(st.binary(max_size=3000), st.dictionaries(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), texts, max_size=4))
def test_multipart_parsing_recovers_fields_and_file_bytes(audio: bytes, fields: dict[str, str]) -> None:
    fields.pop("file", None)
    request = httpx.Request("POST", "http://x/", data=fields, files={"file": ("t.wav", audio, "audio/wav")})
    body = request.read()
    parsed, files = parse_multipart(body, request.headers["content-type"])
    assert parsed == fields and files["file"].data == audio and files["file"].filename == "t.wav"


def test_multipart_parsing_refuses_what_is_not_multipart() -> None:
    with pytest.raises(ValueError):
        parse_multipart(b"{}", "application/json")


def test_start_and_stop_leave_no_thread_behind_and_the_port_is_local() -> None:
    before = set(threading.enumerate())
    fake = FakeOpenAIServer()
    fake.start()
    assert fake.base_url.startswith("http://127.0.0.1:") and fake.base_url.endswith("/v1")
    fake.stop()
    fake.stop()  # idempotent
    assert set(threading.enumerate()) <= before
    with pytest.raises(RuntimeError):
        _ = fake.base_url


def test_async_enter_keeps_the_callers_loop_running() -> None:
    async def scenario() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        async with FakeOpenAIServer() as fake:
            async with async_client(fake) as sdk:
                assert (await sdk.models.list()).data
        task.cancel()
        return ticks

    assert asyncio.run(scenario()) > 1


def test_wait_for_requests_times_out_instead_of_hanging(fake: FakeOpenAIServer) -> None:
    with pytest.raises(TimeoutError):
        fake.wait_for_requests(1, timeout=0.05)

    async def scenario() -> None:
        with pytest.raises(TimeoutError):
            await fake.wait_for_requests_async(1, timeout=0.05)

    asyncio.run(scenario())


def test_wait_for_the_nth_request_from_async_code(fake: FakeOpenAIServer) -> None:
    async def scenario() -> list[str]:
        async with async_client(fake) as sdk:
            calls = [
                sdk.chat.completions.create(model=f"m{i}", messages=[{"role": "user", "content": "x"}])
                for i in range(3)
            ]
            tasks = [asyncio.create_task(c) for c in calls]
            records = await fake.wait_for_requests_async(3, endpoint="chat", completed=True)
            await asyncio.gather(*tasks)
            return sorted(r.json["model"] for r in records)

    assert asyncio.run(scenario()) == ["m0", "m1", "m2"]


def test_a_client_that_leaves_a_hang_is_recorded_as_disconnected(fake: FakeOpenAIServer) -> None:
    fake.fail_next(Hang(max_s=30))
    with openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0, timeout=0.2) as sdk:
        with pytest.raises(openai.APITimeoutError):
            sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    [record] = fake.wait_for_requests(1, completed=True, timeout=5)
    assert record.disconnected and record.status is None and record.fault == "Hang"
