"""A Gemini Live call end to end: real server, simulated Twilio caller, GeminiLiveLLMService
against FakeGeminiLiveServer (barge-in via ``interrupted``, a tool call); every message both
ways validated against google-genai's own types."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from google.genai import types

from phonewire.frames import FunctionCallResultFrame  # noqa: F401  (the API the tool goes through)
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.server import ServerConfig, create_app
from phonewire.services.google import GeminiLiveLLMService
from phonewire.testing import BargeIn, HangUp, Say, WaitForBotReply, simulate_call
from phonewire.testing.fakes import FakeGeminiLiveServer, RealtimeReply, RealtimeToolCall
from phonewire.testing.script import builtin_recording
from support.server_harness import serve

pytestmark = pytest.mark.slow
HELLO, THANKS = builtin_recording("hello"), builtin_recording("thanks")
TOOL = {"type": "function", "function": {"name": "get_order_status", "description": "Look up an order.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}}}  # fmt: skip
LONG = "Your order left our warehouse on Monday and it travelled through three depots before the courier took it today."


def test_a_gemini_call_with_a_tool_call_and_a_barge_in(monkeypatch: pytest.MonkeyPatch) -> None:
    tool = RealtimeReply(tool_calls=(RealtimeToolCall("get_order_status", {"order_id": "42"}),))
    services: list[GeminiLiveLLMService] = []
    seen: list[dict[str, Any]] = []
    replies = [tool, "Order 42 has shipped.", LONG, "Glad to help."]
    with FakeGeminiLiveServer(replies=replies, transcripts=["Order 42?", "Where is it?", "Thanks."]) as fake:
        monkeypatch.setenv("GEMINI_BASE_URL", fake.base_url)
        monkeypatch.setenv("GOOGLE_API_KEY", "test-google-key")

        async def bot(transport: Any, info: Any) -> None:
            llm = GeminiLiveLLMService(instructions="You are a phone agent.", tools=[TOOL])

            async def get_order_status(params: Any) -> None:
                seen.append(dict(params.arguments))
                await params.result_callback({"status": "shipped"})

            llm.register_function("get_order_status", get_order_status)
            services.append(llm)
            task = PipelineTask(Pipeline([transport.input(), llm, transport.output()]))
            await PipelineRunner(handle_sigint=False, handle_sigterm=False).run(task)

        app = create_app(bot, ServerConfig(stream_scheme="ws", freeze_gc=False, vad=None))
        script = [Say.from_wav(HELLO), WaitForBotReply(), Say.from_wav(HELLO), BargeIn.from_wav(1.5, THANKS)]
        script += [WaitForBotReply(), HangUp()]

        async def main() -> Any:
            async with serve(app) as hostport:
                return await simulate_call(f"ws://{hostport}/ws", script=script, max_duration_s=40)

        report = asyncio.run(main())
        [session] = fake.sessions

    assert report.errors == [], report.render_text()
    [llm] = services
    assert seen == [{"order_id": "42"}]
    assert session.api_key == "test-google-key"
    for message in session.received:
        types.LiveClientMessage.model_validate(message)  # what we sent is what the SDK's types allow
    for message in session.sent:
        types.LiveServerMessage.model_validate(message)  # and the fake speaks the SDK's shapes
    [response] = [m["toolResponse"] for m in session.received if "toolResponse" in m]
    assert response["functionResponses"][0]["id"] == "fc_0"
    rates = {m["realtimeInput"]["audio"]["mimeType"] for m in session.received if "realtimeInput" in m}
    assert rates == {"audio/pcm;rate=16000"}
    assert session.interrupted_turns == 1 and llm.interruptions == 1
    assert report.barge_ins and report.barge_ins[0].latency_ms is not None
    interrupted = [m for m in llm.context.messages if m["role"] == "assistant" and m["content"].endswith("—")]
    assert interrupted and "courier" not in interrupted[0]["content"]
    assert "Glad to help." in [m["content"] for m in llm.context.messages]  # the turn after the barge-in
    assert report.turns[-1].response_latency_ms is not None
