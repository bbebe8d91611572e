"""Each fault surfaces through the official SDK as the SDK's own exception class."""

from __future__ import annotations

import asyncio
import json
import time

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from phonewire.testing.fakes import (
    BadJSON,
    BrokenStream,
    FakeOpenAIServer,
    Hang,
    Slow,
    StatusFault,
    StreamError,
    TextReply,
    validate_response,
)
from testing.fakes.conftest import async_client

MESSAGES: list = [{"role": "user", "content": "hi"}]


def stream_text(client: openai.OpenAI) -> str:
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_429_is_a_rate_limit_error_with_retry_after(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    fake.fail_next(StatusFault(429, retry_after_s=1.5))
    with pytest.raises(openai.RateLimitError) as info:
        stream_text(client)
    assert info.value.response.headers["retry-after"] == "2"
    assert info.value.response.headers["retry-after-ms"] == "1500"
    assert info.value.code == "rate_limit_exceeded"


def test_the_sdk_retries_a_429_and_the_retry_gets_the_scripted_reply(fake: FakeOpenAIServer) -> None:
    fake.script_chat("after the retry")
    fake.fail_next(StatusFault(429, retry_after_s=0.01))
    with openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=1) as sdk:
        assert stream_text(sdk) == "after the retry"
    assert [r.status for r in fake.wait_for_requests(2, completed=True)] == [429, 200]


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_an_internal_server_error(fake: FakeOpenAIServer, client: openai.OpenAI, status: int) -> None:
    fake.script_chat(StatusFault(status))
    with pytest.raises(openai.InternalServerError) as info:
        stream_text(client)
    assert info.value.status_code == status
    assert set(fake.requests[0].response_json["error"]) == {"message", "type", "param", "code"}


def test_a_hang_times_the_client_out_and_stop_releases_it_at_once() -> None:
    fake = FakeOpenAIServer()
    fake.start()
    try:
        fake.fail_next(Hang(max_s=30))
        with openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0, timeout=0.3) as sdk:
            with pytest.raises(openai.APITimeoutError):
                stream_text(sdk)
        fake.fail_next(Hang(max_s=30))

        async def hang_then_stop() -> float:
            async with async_client(fake, timeout=20) as sdk:
                task = asyncio.create_task(sdk.chat.completions.create(model="m", messages=MESSAGES))
                await fake.wait_for_requests_async(2)
                began = time.monotonic()
                await asyncio.to_thread(fake.stop)
                with pytest.raises(openai.APIError):
                    await task
                return time.monotonic() - began

        assert asyncio.run(hang_then_stop()) < 5
    finally:
        fake.stop()


def test_a_hang_is_bounded_on_the_server_side(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    fake.fail_next(Hang(max_s=0.2))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 503


def test_a_broken_stream_is_a_connection_error_after_the_good_chunks(fake: FakeOpenAIServer) -> None:
    fake.script_chat(BrokenStream(after_chunks=3, reply=TextReply("one two three four five")))

    async def scenario() -> list[str]:
        got: list[str] = []
        async with async_client(fake) as sdk:
            stream = await sdk.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            with pytest.raises(openai.APIConnectionError):
                async for chunk in stream:
                    got.append(chunk.choices[0].delta.content or "")
        return got

    assert asyncio.run(scenario()) == ["", "one", " two"]
    [record] = fake.wait_for_requests(1, completed=True)
    assert record.fault == "BrokenStream" and "[DONE]" not in record.sse_events


def test_a_clean_broken_stream_ends_without_finish_reason_and_the_sdk_does_not_notice(
    fake: FakeOpenAIServer, client: openai.OpenAI
) -> None:
    fake.fail_next(BrokenStream(after_chunks=2, clean=True))
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert len(chunks) == 2 and all(c.choices[0].finish_reason is None for c in chunks)


def test_bad_json_mid_stream_raises_a_decode_error_after_the_good_chunks(
    fake: FakeOpenAIServer, client: openai.OpenAI
) -> None:
    fake.fail_next(BadJSON(after_chunks=2))
    got = []
    with pytest.raises(json.JSONDecodeError):  # the SDK does not wrap it: services must catch ValueError
        for chunk in client.chat.completions.create(model="m", messages=MESSAGES, stream=True):
            got.append(chunk)
    assert len(got) == 2


def test_an_error_event_mid_stream_is_an_api_error(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    fake.fail_next(StreamError(after_chunks=1, message="overloaded mid-stream"))
    with pytest.raises(openai.APIError, match="overloaded mid-stream"):
        stream_text(client)
    [record] = fake.wait_for_requests(1, completed=True)
    validate_response(ChatCompletionChunk, json.loads(record.sse_events[0]))


def test_slow_delays_the_whole_answer_then_answers(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    fake.script_chat(Slow(0.3, reply=TextReply("late")))
    assert stream_text(client) == "late"
    [record] = fake.wait_for_requests(1, completed=True)
    assert record.first_byte_at is not None and record.first_byte_at - record.arrived_at >= 0.3


def test_faults_apply_to_speech_and_transcriptions(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    fake.fail_next(StatusFault(429), endpoint="speech")
    with pytest.raises(openai.RateLimitError):
        client.audio.speech.create(model="tts-1", voice="alloy", input="hi", response_format="pcm")
    fake.fail_next(BrokenStream(after_chunks=1), endpoint="speech")
    # raw audio bodies are not wrapped by the SDK: the transport's own error comes through
    with pytest.raises(httpx2.RemoteProtocolError):
        with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input="a rather long sentence to need several chunks", response_format="pcm"
        ) as response:
            b"".join(response.iter_bytes())
    fake.script_transcripts(StatusFault(500))
    with pytest.raises(openai.InternalServerError):
        client.audio.transcriptions.create(file=("a.wav", b"RIFF"), model="whisper-1")
    with pytest.raises(ValueError):
        fake.fail_next(BadJSON(), endpoint="speech")
