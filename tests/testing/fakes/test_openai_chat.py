"""Chat Completions through the official SDK: every chunk/response checked against the SDK's types."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from phonewire.testing.fakes import (
    ChatLatency,
    FakeOpenAIServer,
    OpenAIValidationError,
    RecordedRequest,
    TextReply,
    ToolCall,
    ToolCallsReply,
    validate_chat_request,
    validate_response,
)
from testing.fakes.conftest import async_client

MESSAGES: list[Any] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order by id",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
        },
    },
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]


def check_stream_record(record: RecordedRequest) -> list[ChatCompletionChunk]:
    """Every SSE event the fake sent is a strict ChatCompletionChunk, and the stream ends with [DONE]."""
    assert record.sse_events[-1] == "[DONE]"
    return [validate_response(ChatCompletionChunk, json.loads(e)) for e in record.sse_events[:-1]]


def test_streamed_text_arrives_word_by_word_and_every_chunk_is_a_valid_sdk_chunk(
    fake: FakeOpenAIServer, client: openai.OpenAI
) -> None:
    fake.script_chat("Sure, order forty two shipped.")
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    chunks = list(stream)
    contents = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert contents == ["Sure,", " order", " forty", " two", " shipped."]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    [record] = fake.wait_for_requests(1, endpoint="chat", completed=True)
    assert len(check_stream_record(record)) == len(chunks)
    validate_chat_request(record.json)


def test_chunk_size_and_explicit_chunks_control_the_deltas(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    fake.script_chat(TextReply("abcdefg", chunk_size=3), TextReply(chunks=["Hel", "lo"]))
    for expected in (["abc", "def", "g"], ["Hel", "lo"]):
        stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        assert [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content] == expected


def test_parallel_tool_calls_stream_like_openai_and_the_sdk_accumulates_them(
    fake: FakeOpenAIServer, client: openai.OpenAI
) -> None:
    fake.script_chat(
        ToolCallsReply([ToolCall("lookup_order", {"order_id": "42"}, id="call_A"), ToolCall("get_time", id="call_B")])
    )
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS) as stream:
        completion = stream.get_final_completion()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [  # type: ignore[union-attr]
        ("call_A", "lookup_order", {"order_id": "42"}),
        ("call_B", "get_time", {}),
    ]
    [record] = fake.wait_for_requests(1, completed=True)
    chunks = check_stream_record(record)
    starts = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or [] if tc.id]
    assert [(s.index, s.type, s.function.name, s.function.arguments) for s in starts] == [  # type: ignore[union-attr]
        (0, "function", "lookup_order", ""),
        (1, "function", "get_time", ""),
    ]
    fragments = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or [] if not tc.id]
    assert all(f.function and f.function.name is None and f.function.arguments for f in fragments)
    assert len([f for f in fragments if f.index == 0]) > 1  # arguments really are fragmented
    validate_chat_request(record.json)
    assert record.json["tools"] == TOOLS


def test_usage_comes_in_a_final_chunk_with_no_choices_when_asked(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == chunks[-1].usage.prompt_tokens + chunks[-1].usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])
    [record] = fake.wait_for_requests(1, completed=True)
    check_stream_record(record)
    assert all(json.loads(e)["usage"] is None for e in record.sse_events[:-2])  # null, as OpenAI sends it


def test_without_include_usage_no_chunk_carries_usage(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    [record] = fake.wait_for_requests(1, completed=True)
    assert all("usage" not in json.loads(e) for e in record.sse_events[:-1])


def test_non_streaming_completion_is_a_valid_chat_completion(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    fake.script_chat("One two.", ToolCallsReply([ToolCall("get_time")], text="Checking."))
    first = client.chat.completions.create(model="m", messages=MESSAGES)
    second = client.chat.completions.create(model="m", messages=MESSAGES, tools=TOOLS)
    assert first.choices[0].message.content == "One two." and first.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "Checking."
    assert second.choices[0].message.tool_calls[0].function.name == "get_time"  # type: ignore[index,union-attr]
    for record in fake.wait_for_requests(2, completed=True):
        validate_response(ChatCompletion, record.response_json)
        validate_chat_request(record.json)


def test_responder_answers_from_the_messages_after_the_script_runs_out(fake: FakeOpenAIServer) -> None:
    fake.chat_responder = lambda request: f"You said: {request['messages'][-1]['content']}"
    fake.script_chat("scripted first")

    async def scenario() -> list[str]:
        async with async_client(fake) as sdk:
            texts = []
            for word in ("alpha", "beta"):
                stream = await sdk.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": word}], stream=True
                )
                texts.append("".join([c.choices[0].delta.content or "" async for c in stream if c.choices]))
            return texts

    assert asyncio.run(scenario()) == ["scripted first", "You said: beta"]


def test_default_reply_when_nothing_is_scripted(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    fake.default_reply = TextReply("fallback")
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content == "fallback"


def test_time_to_first_token_and_per_token_delay_are_applied_on_the_fakes_clock(fake: FakeOpenAIServer) -> None:
    fake.chat_latency = ChatLatency(first_token_s=0.2, per_token_s=0.02)
    fake.script_chat("a b c d e")

    async def scenario() -> None:
        async with async_client(fake) as sdk:
            stream = await sdk.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            [c async for c in stream]

    asyncio.run(scenario())
    [record] = fake.wait_for_requests(1, completed=True)
    assert record.first_byte_at is not None and record.first_byte_at - record.arrived_at >= 0.2
    gaps = [b - a for a, b in zip(record.event_times, record.event_times[1:-1], strict=False)]
    assert all(gap >= 0.019 for gap in gaps)


def test_the_request_the_sdk_sent_is_recorded_with_redacted_auth(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.3, max_completion_tokens=50)
    [record] = fake.chat_requests
    assert (record.method, record.path, record.endpoint) == ("POST", "/v1/chat/completions", "chat")
    assert record.headers["authorization"] == "Bearer ...abcd" and record.has_auth and record.api_key_last4 == "abcd"
    assert "sk-test" not in json.dumps(record.headers)
    assert record.json["temperature"] == 0.3 and record.json["messages"] == MESSAGES


def test_a_request_without_an_api_key_gets_401(fake: FakeOpenAIServer) -> None:
    response = httpx.post(f"{fake.base_url}/chat/completions", json={"model": "m", "messages": MESSAGES}, timeout=5)
    assert response.status_code == 401 and response.json()["error"]["type"] == "invalid_request_error"
    assert fake.requests[0].has_auth is False and fake.requests[0].api_key_last4 is None


def test_missing_messages_are_a_400_in_openais_error_shape(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="m", messages=[])
    assert info.value.status_code == 400 and info.value.param == "messages"
    assert set(fake.requests[0].response_json["error"]) == {"message", "type", "param", "code"}


def test_validate_chat_request_rejects_what_the_api_would_not_accept() -> None:
    good = {
        "model": "m",
        "messages": MESSAGES,
        "stream": True,
        "tools": TOOLS,
        "stream_options": {"include_usage": True},
    }
    assert validate_chat_request(good)["model"] == "m"
    bad = [
        {**good, "bogus": 1},
        {**good, "messages": [{"role": "caller", "content": "hi"}]},
        {**good, "messages": [{"role": "user", "content": "hi", "extra": True}]},
        {**good, "stream_options": {"include_usge": True}},
        {**good, "tools": [{"type": "function", "function": {"name": "f", "parameter": {}}}]},
        {"model": "m", "stream": True},
        {**good, "temperature": "hot"},
    ]
    for body in bad:
        with pytest.raises(OpenAIValidationError):
            validate_chat_request(body)


def test_validate_response_rejects_unknown_fields_at_any_depth() -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": []}
    validate_response(ChatCompletionChunk, chunk)
    with pytest.raises(OpenAIValidationError, match="unknown field"):
        validate_response(ChatCompletionChunk, {**chunk, "surprise": 1})
    nested = {**chunk, "choices": [{"index": 0, "delta": {"content": "x", "odd": 1}, "finish_reason": None}]}
    with pytest.raises(OpenAIValidationError, match="odd"):
        validate_response(ChatCompletionChunk, nested)
