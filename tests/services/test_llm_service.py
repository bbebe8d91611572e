"""LLMService base: the function registry, result delivery and the cancellation rules."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from phonewire.frames import (
    CancelFrame,
    FunctionCallFromLLM,
    FunctionCallResultFrame,
    FunctionCallResultProperties,
    TextFrame,
    TTSSpeakFrame,
)
from phonewire.services.function_calls import FunctionCallParams, RequestedCall
from phonewire.services.llm_service import LLMService

from .openai.llm_harness import pipeline


def requested(name: str, call_id: str, **arguments: Any) -> RequestedCall:
    return RequestedCall(call=FunctionCallFromLLM(function_name=name, tool_call_id=call_id, arguments=arguments))


def test_registry_uses_pipecat_names_and_a_catch_all() -> None:
    llm = LLMService()

    async def handler(params: FunctionCallParams) -> None: ...

    llm.register_function("a", handler)
    assert llm.has_function("a") and not llm.has_function("b")
    llm.register_function(None, handler)
    assert llm.has_function("b")
    llm.unregister_function(None)
    llm.unregister_function("a")
    assert not llm.has_function("a")
    with pytest.raises(TypeError):
        llm.register_function("x", "not callable")  # type: ignore[arg-type]


def test_result_callback_properties_and_params_reach_the_result_frame_once() -> None:
    async def scenario() -> None:
        llm = LLMService()
        seen: list[FunctionCallParams] = []
        tasks: list[asyncio.Task[Any]] = []

        async def handler(params: FunctionCallParams) -> str:
            seen.append(params)
            tasks.append(asyncio.current_task())  # type: ignore[arg-type]
            await params.result_callback({"ok": True}, properties=FunctionCallResultProperties(run_llm=False))
            await params.result_callback("ignored")
            return "also ignored"

        llm.register_function(None, handler)
        context = object()
        async with pipeline(llm) as h:
            await llm.run_function_calls([requested("anything", "c1", x=1)], context)
            (result,) = await h.down.wait_count(FunctionCallResultFrame, 1)
            await asyncio.wait_for(asyncio.gather(*tasks), 2)
            assert h.down.of(FunctionCallResultFrame) == [result]
        assert result.result == {"ok": True} and result.run_llm is False and result.arguments == {"x": 1}
        (params,) = seen
        assert (params.function_name, params.tool_call_id) == ("anything", "c1")
        assert params.llm is llm and params.context is context

    asyncio.run(scenario())


def test_cancel_frame_stops_even_handlers_that_survive_interruptions() -> None:
    async def scenario() -> None:
        llm = LLMService()
        started, finished = asyncio.Event(), asyncio.Event()

        async def forever(params: FunctionCallParams) -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            finally:
                finished.set()

        llm.register_function("forever", forever, cancel_on_interruption=False)
        async with pipeline(llm) as h:
            await llm.run_function_calls([requested("forever", "f1")], None)
            await asyncio.wait_for(started.wait(), 2)
            await h.task.queue_frame(CancelFrame())
            await asyncio.wait_for(finished.wait(), 2)
        assert not llm._running

    asyncio.run(scenario())


def test_fail_turn_speaks_the_configured_apology_or_none() -> None:
    async def scenario(apology: str | None) -> list[TTSSpeakFrame]:
        llm = LLMService(apology=apology)
        async with pipeline(llm) as h:
            await llm.fail_turn("timeout", "test")
            await llm.push_frame(TextFrame(text="marker"))
            await h.down.wait_count(TextFrame, 1)
            assert [type(f).__name__ for f in h.up.frames] == ["ErrorFrame"]
            return h.down.of(TTSSpeakFrame)

    (speak,) = asyncio.run(scenario("One moment, please."))
    assert speak.text == "One moment, please." and not speak.append_to_context
    assert asyncio.run(scenario(None)) == []
