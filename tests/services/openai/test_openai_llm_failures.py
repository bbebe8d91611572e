"""Barge-in and faults: the stream is closed, nothing late is pushed, failures are heard."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from phonewire.frames import (
    ErrorFrame,
    FunctionCallCancelFrame,
    FunctionCallResultFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSSpeakFrame,
)
from phonewire.testing.fakes import (
    BadJSON,
    BrokenStream,
    ChatLatency,
    FakeOpenAIServer,
    Hang,
    StatusFault,
    StreamError,
    TextReply,
    ToolCall,
    ToolCallsReply,
)

from .llm_harness import Harness, pipeline
from .test_openai_llm import reply_frames, run, service, texts

APOLOGY = "Sorry, I'm having trouble right now. Could you say that again?"


def test_interruption_during_generation_closes_the_stream_and_nothing_late_is_pushed() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        fake.chat_latency = ChatLatency(per_token_s=0.05)
        fake.script_chat(TextReply("one two three four five six seven eight nine ten eleven twelve"), "Next turn.")
        llm = service(fake)
        async with pipeline(llm) as h:
            await h.run_context()
            await h.down.wait_count(LLMTextFrame, 2)
            await h.task.queue_frame(InterruptionFrame())
            (request,) = await fake.wait_for_requests_async(1, endpoint="chat", completed=True)
            assert request.disconnected
            seen = len(h.down.of(LLMTextFrame))
            await h.run_context()  # the next turn works, and the old one stays silent
            await h.down.wait_count(LLMFullResponseEndFrame, 1)
            late = [f.text for f in h.down.of(LLMTextFrame)[seen:]]
            assert "".join(late) == "Next turn."
            assert len(h.down.of(LLMFullResponseStartFrame)) == 2 and llm.error_count == 0

    run(scenario)


def test_interruption_cancels_interruptible_handlers_with_a_result_and_keeps_the_others() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        fake.script_chat(ToolCallsReply([ToolCall("transfer", id="t1"), ToolCall("log_call", id="t2")]))
        running = asyncio.Event()
        release = asyncio.Event()

        async def transfer(params: Any) -> None:
            running.set()
            await asyncio.Event().wait()

        async def log_call(params: Any) -> str:
            await asyncio.wait_for(release.wait(), 3)
            return "logged"

        llm = service(fake)
        llm.register_function("transfer", transfer)
        llm.register_function("log_call", log_call, cancel_on_interruption=False)
        async with pipeline(llm) as h:
            await h.run_context()
            await asyncio.wait_for(running.wait(), 5)
            await h.task.queue_frame(InterruptionFrame())
            (cancel,) = await h.down.wait_count(FunctionCallCancelFrame, 1)
            assert cancel.tool_call_id == "t1"
            release.set()
            results = {r.tool_call_id: r for r in await h.down.wait_count(FunctionCallResultFrame, 2)}
            assert results["t1"].run_llm is False and "interrupted" in results["t1"].result["error"]
            assert results["t2"].result == "logged"

    run(scenario)


async def _apology_then_next_turn(h: Harness, fake: FakeOpenAIServer) -> float:
    """Waits for the apology (returns when it came), then checks a next turn works."""
    await h.run_context()
    await h.down.wait_count(TTSSpeakFrame, 1, timeout=10)
    heard_at = time.monotonic()
    (speak,) = h.down.of(TTSSpeakFrame)
    assert speak.text == APOLOGY and speak.append_to_context is False
    assert reply_frames(h)[-2:] == ["LLMFullResponseEndFrame", "TTSSpeakFrame"]
    (error,) = h.up.of(ErrorFrame)
    assert error.fatal is False
    fake.script_chat("All good now.")
    before = len(h.down.of(LLMTextFrame))
    await h.run_context()
    await h.down.wait_count(LLMFullResponseEndFrame, 2)
    assert "".join(f.text for f in h.down.of(LLMTextFrame)[before:]) == "All good now."
    return heard_at


def test_429_then_success_is_retried_after_retry_after() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        fake.fail_next(StatusFault(429, retry_after_s=0.3))
        fake.script_chat("Retried fine.")
        llm = service(fake)
        async with pipeline(llm) as h:
            await h.run_context()
            await h.down.wait_count(LLMFullResponseEndFrame, 1)
            assert texts(h) == "Retried fine." and h.down.of(TTSSpeakFrame) == [] and h.up.of(ErrorFrame) == []
        first, second = fake.chat_requests
        assert second.arrived_at - first.arrived_at >= 0.3
        assert llm.error_counts["rate_limit"] == 1 and llm.retry_count == 1

    run(scenario)


def test_500_twice_ends_in_the_apology_an_error_frame_and_counts_then_the_next_turn_works() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        fake.fail_next(StatusFault(500), times=2)
        llm = service(fake)
        async with pipeline(llm) as h:
            await _apology_then_next_turn(h, fake)
        assert llm.error_counts["server_error"] == 2 and llm.apology_count == 1 and llm.error_count == 2
        assert len(fake.chat_requests) == 3

    run(scenario)


def test_a_hang_beyond_the_first_token_deadline_is_apologised_for_within_two_seconds() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        fake.fail_next(Hang(max_s=10), times=2)
        llm = service(fake, first_token_timeout_secs=0.3)
        async with pipeline(llm) as h:
            start = time.monotonic()
            heard_at = await _apology_then_next_turn(h, fake)
            assert heard_at - start < 0.3 * 2 + 0.2 + 1.0  # two deadlines, one pause, slack
        assert llm.error_counts["timeout"] == 2
        hung = await fake.wait_for_requests_async(2, endpoint="chat", completed=True)
        assert all(r.disconnected for r in hung)

    run(scenario)


def test_a_stream_that_stalls_after_the_first_token_is_cut_and_apologised_for() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        fake.chat_latency = ChatLatency(per_token_s=1.0)
        fake.script_chat(TextReply("slow words here"))
        llm = service(fake, stream_timeout_secs=0.3)
        async with pipeline(llm) as h:
            await h.run_context()
            await h.down.wait_count(TTSSpeakFrame, 1)
            fake.chat_latency = ChatLatency()
        assert llm.error_counts["timeout"] == 1 and llm.retry_count == 0  # text was already said

    run(scenario)


def test_a_broken_stream_before_any_text_is_retried() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        fake.fail_next(BrokenStream(after_chunks=1))
        fake.script_chat("Second try.")
        llm = service(fake)
        async with pipeline(llm) as h:
            await h.run_context()
            await h.down.wait_count(LLMFullResponseEndFrame, 1)
            assert texts(h) == "Second try." and h.down.of(TTSSpeakFrame) == []
        assert llm.error_counts["connection"] == 1 and llm.retry_count == 1

    run(scenario)


def test_a_cleanly_truncated_stream_is_noticed_and_retried() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        fake.fail_next(BrokenStream(after_chunks=1, clean=True))
        fake.script_chat("Whole reply.")
        llm = service(fake)
        async with pipeline(llm) as h:
            await h.run_context()
            await h.down.wait_count(LLMFullResponseEndFrame, 1)
            assert texts(h) == "Whole reply."
        assert llm.error_counts["truncated"] == 1

    run(scenario)


def test_bad_json_twice_is_apologised_for_and_the_next_turn_works() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        fake.fail_next(BadJSON(after_chunks=1), times=2)
        llm = service(fake)
        async with pipeline(llm) as h:
            await _apology_then_next_turn(h, fake)
        assert llm.error_counts["bad_json"] == 2

    run(scenario)


def test_a_mid_stream_error_event_after_text_is_not_retried_but_apologised_for() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        fake.fail_next(StreamError(after_chunks=3, reply=TextReply("Partial answer that")))
        llm = service(fake)
        async with pipeline(llm) as h:
            await _apology_then_next_turn(h, fake)
        assert llm.error_counts["stream_error"] == 1 and llm.retry_count == 0

    run(scenario)


def test_a_server_refusing_stream_options_is_asked_again_without_them() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        refusal = StatusFault(400, message="Unrecognized request argument: stream_options", param="stream_options")
        fake.fail_next(refusal)
        fake.script_chat("No usage here.", "Still fine.")
        llm = service(fake)
        async with pipeline(llm) as h:
            await h.run_context()
            await h.down.wait_count(LLMFullResponseEndFrame, 1)
            await h.run_context()
            await h.down.wait_count(LLMFullResponseEndFrame, 2)
        first, second, third = (r.json for r in fake.chat_requests)
        assert "stream_options" in first and "stream_options" not in second and "stream_options" not in third
        assert llm.error_count == 0

    run(scenario)


def test_quota_exhausted_is_not_retried() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        fake.fail_next(StatusFault(429, code="insufficient_quota"))
        llm = service(fake)
        async with pipeline(llm) as h:
            await _apology_then_next_turn(h, fake)
        assert llm.error_counts["quota"] == 1 and llm.retry_count == 0

    run(scenario)
