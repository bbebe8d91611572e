"""OpenAILLMService with the real LLMContext and aggregator pair: the tool-call round trip."""

from __future__ import annotations

import asyncio
from typing import Any

from phonewire.frames import FrameDirection, LLMFullResponseEndFrame, LLMRunFrame, LLMTextFrame
from phonewire.pipeline import Pipeline, PipelineTask
from phonewire.processors.aggregators.llm_context import LLMContext
from phonewire.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from phonewire.testing.fakes import FakeOpenAIServer, ToolCall, ToolCallsReply, validate_chat_request

from .llm_harness import Recorder, tool
from .test_openai_llm import run, service


def test_tool_call_round_trip_through_the_aggregators_reruns_with_the_results_in_the_context() -> None:
    async def scenario(fake: FakeOpenAIServer) -> None:
        calls = [ToolCall("lookup_order", {"order_id": "42"}, id="call_A"), ToolCall("get_time", id="call_B")]
        fake.script_chat(ToolCallsReply(calls), "Your order 42 has shipped.")

        async def lookup_order(params: Any) -> None:
            await params.result_callback({"status": "shipped"})

        async def get_time(params: Any) -> str:
            return "noon"

        llm = service(fake)
        llm.register_function("lookup_order", lookup_order)
        llm.register_function("get_time", get_time)
        context = LLMContext(
            messages=[{"role": "user", "content": "Where is order 42?"}],
            tools=[tool("lookup_order"), tool("get_time")],
        )
        pair = LLMContextAggregatorPair(context)
        rec = Recorder(FrameDirection.DOWNSTREAM)
        task = PipelineTask(Pipeline([pair.user(), llm, rec, pair.assistant()]))
        runner = asyncio.create_task(task.run())
        try:
            await task.queue_frame(LLMRunFrame())
            await rec.wait_count(LLMFullResponseEndFrame, 2)
            assert "".join(f.text for f in rec.of(LLMTextFrame)) == "Your order 42 has shipped."
        finally:
            await task.cancel()
            await asyncio.wait_for(runner, 5)
        first, second = fake.chat_requests
        body = validate_chat_request(second.json)
        assert len(validate_chat_request(first.json)["messages"]) == 1
        assistant, *tools = body["messages"][1:]
        assert [c["id"] for c in assistant["tool_calls"]] == ["call_A", "call_B"]
        assert {m["tool_call_id"]: m["content"] for m in tools} == {"call_A": '{"status": "shipped"}', "call_B": "noon"}
        assert llm.error_count == 0

    run(scenario)
