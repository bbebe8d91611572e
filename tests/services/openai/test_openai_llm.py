"""OpenAILLMService through the official SDK against FakeOpenAIServer on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from phonewire.frames import (
    ErrorFrame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
    LatencyStageFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    LLMUsageMetricsData,
    MetricsFrame,
    TTSSpeakFrame,
)
from phonewire.services.openai import OpenAILLMService
from phonewire.testing.fakes import (
    FakeOpenAIServer,
    TextReply,
    ToolCall,
    ToolCallsReply,
    validate_chat_request,
)

from .llm_harness import Context, Harness, pipeline, tool

KEY = "sk-test-very-secret-key-1234"


def service(fake: FakeOpenAIServer, **kwargs: Any) -> OpenAILLMService:
    kwargs.setdefault("first_token_timeout_secs", 2.0)
    return OpenAILLMService(api_key=KEY, base_url=fake.base_url, model="gpt-4o-mini", **kwargs)


def run(scenario: Callable[[FakeOpenAIServer], Awaitable[None]], **fake_args: Any) -> None:
    async def main() -> None:
        async with FakeOpenAIServer(**fake_args) as fake:
            await asyncio.wait_for(scenario(fake), 20)

    asyncio.run(main())


def reply_frames(h: Harness) -> list[str]:
    kinds = (LLMFullResponseStartFrame, LLMTextFrame, LLMFullResponseEndFrame, TTSSpeakFrame)
    return [type(f).__name__ for f in h.down.frames if isinstance(f, kinds)]


def texts(h: Harness) -> str:
    return "".join(f.text for f in h.down.of(LLMTextFrame))


def test_streamed_text_becomes_text_frames_in_order_between_start_and_end() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        fake.script_chat(TextReply("Hello there, how can I help?"))
        llm = service(fake, params=OpenAILLMService.InputParams(temperature=0.3, max_completion_tokens=80))
        async with pipeline(llm, metrics=True) as h:
            await h.run_context()
            await h.down.wait_count(LLMFullResponseEndFrame, 1)
            names = reply_frames(h)
            assert names[0] == "LLMFullResponseStartFrame" and names[-1] == "LLMFullResponseEndFrame"
            assert set(names[1:-1]) == {"LLMTextFrame"} and len(names) > 4
            assert texts(h) == "Hello there, how can I help?"
            assert [f.stage for f in h.down.of(LatencyStageFrame)] == ["llm_first_token"]
            usage = [d for m in h.down.of(MetricsFrame) for d in m.data if isinstance(d, LLMUsageMetricsData)]
            assert usage and usage[0].value.total_tokens > 0
        (request,) = fake.chat_requests
        body = validate_chat_request(request.json)
        assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
        assert body["model"] == "gpt-4o-mini" and body["temperature"] == 0.3 and body["max_completion_tokens"] == 80
        assert body["messages"] == [{"role": "user", "content": "Hi there"}]
        assert request.api_key_last4 == KEY[-4:]
        assert llm.error_count == 0

    run(scenario)


def test_settings_system_instruction_is_prepended_and_the_request_validates() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        settings = OpenAILLMService.Settings(model="gpt-4o", system_instruction="Be brief.", seed=7)
        llm = OpenAILLMService(api_key=KEY, base_url=fake.base_url, settings=settings)
        async with pipeline(llm) as h:
            ctx = Context(tools=[tool("get_time")], tool_choice="auto")
            await h.run_context(ctx)
            await h.down.wait_count(LLMFullResponseEndFrame, 1)
        body = validate_chat_request(fake.chat_requests[0].json)
        assert body["model"] == "gpt-4o" and body["seed"] == 7
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert body["tools"] == [tool("get_time")] and body["tool_choice"] == "auto"

    run(scenario)


def test_api_key_never_in_logs_or_repr(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario(fake: FakeOpenAIServer) -> None:
        from phonewire.testing.fakes import StatusFault

        fake.fail_next(StatusFault(401), times=1)
        llm = service(fake)
        assert KEY not in repr(llm) and KEY not in str(vars(llm))
        async with pipeline(llm) as h:
            await h.run_context()
            await h.down.wait_count(TTSSpeakFrame, 1)
            assert KEY not in h.up.of(ErrorFrame)[0].error

    run(scenario)
    assert KEY not in caplog.text


def test_two_parallel_tool_calls_run_concurrently_and_their_results_are_pushed() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        fake.script_chat(
            ToolCallsReply(
                [ToolCall("lookup_order", {"order_id": "42"}, id="call_A"), ToolCall("get_time", {}, id="call_B")],
                argument_chunk_size=3,
            )
        )
        started = {"lookup_order": asyncio.Event(), "get_time": asyncio.Event()}
        other = {"lookup_order": "get_time", "get_time": "lookup_order"}

        async def handler(params: Any) -> None:
            started[params.function_name].set()
            await asyncio.wait_for(started[other[params.function_name]].wait(), 3)  # needs the other running
            await params.result_callback({"name": params.function_name, "args": params.arguments})

        async def plain(params: Any) -> dict[str, str]:  # phonewire's shortcut: return the result
            started["get_time"].set()
            await asyncio.wait_for(started["lookup_order"].wait(), 3)
            return {"time": "noon"}

        llm = service(fake)
        llm.register_function("lookup_order", handler)
        llm.register_function("get_time", plain, cancel_on_interruption=False)
        assert llm.has_function("get_time") and not llm.has_function("nope")
        async with pipeline(llm) as h:
            ctx = Context(tools=[tool("lookup_order"), tool("get_time")])
            await h.run_context(ctx)
            results = await h.down.wait_count(FunctionCallResultFrame, 2)
            (started_frame,) = h.down.of(FunctionCallsStartedFrame)
            assert [c.tool_call_id for c in started_frame.function_calls] == ["call_A", "call_B"]
            progress = h.down.of(FunctionCallInProgressFrame)
            assert [(p.tool_call_id, p.arguments) for p in progress] == [("call_A", {"order_id": "42"}), ("call_B", {})]
            assert [p.cancel_on_interruption for p in progress] == [True, False]
            assert progress[0].metadata["tool_call"]["function"]["arguments"] == '{"order_id": "42"}'
            by_id = {r.tool_call_id: r.result for r in results}
            assert by_id == {"call_A": {"name": "lookup_order", "args": {"order_id": "42"}}, "call_B": {"time": "noon"}}
            order = [type(f).__name__ for f in h.down.frames]
            assert order.index("FunctionCallInProgressFrame") < order.index("LLMFullResponseEndFrame")
            assert order.index("LLMFullResponseEndFrame") < order.index("FunctionCallResultFrame")
            assert h.down.of(LLMTextFrame) == [] and len(fake.chat_requests) == 1  # no re-run by the LLM itself

    run(scenario)


def test_a_handler_past_its_timeout_or_raising_answers_with_an_error_result() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        calls = [ToolCall("slow", id="c1"), ToolCall("broken", id="c2"), ToolCall("bad", "{not json", id="c3")]
        fake.script_chat(ToolCallsReply([*calls, ToolCall("unknown", id="c4")]))

        async def slow(params: Any) -> None:
            await asyncio.Event().wait()

        async def broken(params: Any) -> None:
            raise RuntimeError("boom")

        ran: list[str] = []

        async def bad(params: Any) -> None:
            ran.append("bad")

        llm = service(fake)
        llm.register_function("slow", slow, timeout_secs=0.2)
        llm.register_function("broken", broken)
        llm.register_function("bad", bad)
        async with pipeline(llm) as h:
            await h.run_context()
            results = {r.tool_call_id: r.result for r in await h.down.wait_count(FunctionCallResultFrame, 4)}
        assert "did not answer within 0.2 s" in results["c1"]["error"]
        assert "RuntimeError" in results["c2"]["error"]
        assert "invalid JSON" in results["c3"]["error"] and ran == []
        assert "unknown function" in results["c4"]["error"]
        assert llm.error_counts["function_timeout"] == 1 and llm.error_counts["function_error"] == 1
        assert llm.error_counts["function_arguments"] == 1 and llm.error_counts["function_unknown"] == 1

    run(scenario)


def test_run_and_append_frames_reaching_the_llm_are_forwarded_untouched() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        from phonewire.frames import LLMMessagesAppendFrame, LLMRunFrame

        llm = service(fake)
        async with pipeline(llm) as h:
            run_frame, append = LLMRunFrame(), LLMMessagesAppendFrame(messages=[{"role": "user", "content": "x"}])
            await h.task.queue_frames([run_frame, append])
            await h.down.wait_count(LLMMessagesAppendFrame, 1)
            assert h.down.of(LLMRunFrame) == [run_frame] and h.down.of(LLMMessagesAppendFrame) == [append]
        assert fake.chat_requests == []

    run(scenario)


def test_unknown_params_reach_the_body_through_extra_body_and_chunks_arrive_as_dicts() -> None:
    """The request goes out through ``client.post`` (no SDK transform): ``extra_body`` is merged
    into the JSON body, and the chunks, read as plain dicts, assemble into the text."""

    async def scenario(fake: FakeOpenAIServer) -> None:
        fake.script_chat(TextReply("One moment."))
        llm = service(fake, params=OpenAILLMService.InputParams(temperature=0.2, extra={"top_k": 40}))
        async with pipeline(llm) as h:
            await h.run_context()
            await h.down.wait_count(LLMFullResponseEndFrame, 1)
            assert texts(h) == "One moment."
        body = fake.chat_requests[0].json
        assert body["top_k"] == 40 and body["temperature"] == 0.2 and "extra_body" not in body
        assert validate_chat_request({k: v for k, v in body.items() if k != "top_k"})["stream"] is True

    run(scenario)


def test_clients_share_one_tls_context_built_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A call's client must not load the CA bundle again (~30 ms on the loop per call start)."""
    import ssl

    from phonewire.services.openai import llm as llm_module

    built = []
    real = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", lambda *a, **k: built.append(1) or real(*a, **k))
    monkeypatch.setattr(llm_module, "_ssl_context", None)

    async def main() -> None:
        clients = [OpenAILLMService(api_key=KEY, base_url="http://127.0.0.1:9/v1")._ensure_client() for _ in range(3)]
        for client in clients:
            await client.close()

    asyncio.run(main())
    assert len(built) == 1 and llm_module._ssl_context is not None
