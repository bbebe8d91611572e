"""A cascaded phone agent end to end: real server, simulated caller, fake OpenAI services.

Each test is one real-time call (Silero VAD on the espeak caller, STT -> the aggregator pair
-> LLM -> TTS -> the output transport and the provider's marks) and asserts what reached the
fake services and what the caller heard.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agent_app import GREETING, AgentCall, agent_app

from phonewire.testing import BargeIn, HangUp, Say, Silence, WaitForBotReply, simulate_call
from phonewire.testing.fakes import (
    ChatLatency,
    FakeOpenAIServer,
    Hang,
    StatusFault,
    TextReply,
    ToolCall,
    ToolCallsReply,
    validate_chat_request,
)
from phonewire.testing.script import builtin_recording
from support.server_harness import serve

pytestmark = pytest.mark.slow

HELLO = builtin_recording("hello")  # "Hi, I would like to know my order status."
THANKS = builtin_recording("thanks")  # "Thank you, that's all."
LONG_REPLY = (
    "Your order left our warehouse on Monday, it travelled through three depots, "
    "it is now with the local courier, and it should reach you tomorrow before noon."
)


def _call(fake: FakeOpenAIServer, script: list[Any], **app_kwargs: Any) -> tuple[Any, list[AgentCall]]:
    calls: list[AgentCall] = []

    async def main() -> Any:
        async with serve(agent_app(fake, calls, **app_kwargs)) as hostport:
            return await simulate_call(f"ws://{hostport}/ws", script=script, max_duration_s=60)

    report = asyncio.run(main())
    assert report.errors == [], report.render_text()
    return report, calls


def _messages(request: Any) -> list[dict[str, Any]]:
    validate_chat_request(request.json)  # what our LLM service sent is what the SDK's types allow
    return list(request.json["messages"])


def _roles(messages: list[dict[str, Any]]) -> list[str]:
    return [m["role"] for m in messages]


def test_a_multi_turn_call_carries_every_earlier_turn_in_the_context() -> None:
    with FakeOpenAIServer(
        transcripts=["I would like to know my order status.", "Thank you, that's all."],
        chat_replies=["Sure, what is the order number?", "You are welcome, goodbye."],
    ) as fake:
        script = [WaitForBotReply(), Say.from_wav(HELLO), WaitForBotReply(), Say.from_wav(THANKS), WaitForBotReply()]
        report, [call] = _call(fake, [*script, HangUp()])
        first, second = fake.chat_requests[:2]
        speech = [r.json["input"] for r in fake.speech_requests]

    assert _roles(_messages(first)) == ["system", "assistant", "user"]
    second_messages = _messages(second)
    assert _roles(second_messages) == ["system", "assistant", "user", "assistant", "user"]
    assert second_messages[1]["content"] == GREETING
    assert second_messages[2]["content"] == "I would like to know my order status."
    assert second_messages[3]["content"] == "Sure, what is the order number?"
    assert second_messages[4]["content"] == "Thank you, that's all."
    assert speech[0] == GREETING
    assert "".join(speech[1:]).replace(" ", "") == "Sure,whatistheordernumber?Youarewelcome,goodbye."
    answered = [t for t in report.turns if t.response_latency_ms is not None]
    assert len(answered) >= 2
    # the transport's own breakdown of each answered turn, stage by stage
    turns = call.transport.stats.turns
    assert len(turns) >= 2
    for turn in turns[:2]:
        stages = turn.stages
        assert stages["transcript"] <= stages["turn_end"] <= stages["llm_first_token"] <= stages["tts_first_byte"]
        assert stages["tts_first_byte"] <= stages["first_audio_sent"] <= stages["first_audio_heard"]
        assert turn.heard_source == "provider_ack"


def test_a_barge_in_mid_reply_leaves_only_the_heard_part_in_the_context() -> None:
    with FakeOpenAIServer(
        transcripts=["Where is my order?", "Thanks."], chat_replies=[LONG_REPLY, "Glad to help."]
    ) as fake:
        script = [WaitForBotReply(), Say.from_wav(HELLO), BargeIn.from_wav(2.0, THANKS), WaitForBotReply()]
        report, [call] = _call(fake, [*script, HangUp()])
        second = fake.chat_requests[1]

    assert report.barge_ins and report.barge_ins[0].latency_ms is not None
    messages = _messages(second)
    assert _roles(messages) == ["system", "assistant", "user", "assistant", "user"]
    heard = messages[3]["content"]
    assert heard.endswith(" —")  # marked interrupted
    kept = heard.removesuffix(" —").strip()
    assert kept and LONG_REPLY.startswith(kept) and len(kept) < len(LONG_REPLY)
    # the caller heard about 2 s of a ~9 s reply: the context keeps the first clause or two, not the rest
    assert "tomorrow before noon" not in heard


def test_talking_while_the_llm_is_still_generating_cancels_that_reply() -> None:
    with FakeOpenAIServer(
        transcripts=["Where is my order?", "Actually, never mind."],
        chat_replies=["This reply must never be spoken.", "No problem."],
        chat_latency=ChatLatency(first_token_s=4.0),
    ) as fake:
        # the caller pauses long enough for the turn to end, then goes on before any answer
        script = [WaitForBotReply(), Say.from_wav(HELLO), Silence(1.3), Say.from_wav(THANKS), WaitForBotReply(20)]
        report, _ = _call(fake, [*script, HangUp()])
        first, second = fake.chat_requests[:2]
        speech = [r.json["input"] for r in fake.speech_requests]

    assert first.disconnected  # the interrupted generation's HTTP stream was closed
    assert "This reply must never be spoken." not in "".join(speech)
    messages = _messages(second)
    assert [m["content"] for m in messages if m["role"] == "user"] == ["Where is my order?", "Actually, never mind."]
    assert all("never be spoken" not in str(m.get("content")) for m in messages)


def test_a_tool_call_round_trip_continues_the_turn_with_the_result() -> None:
    with FakeOpenAIServer(
        transcripts=["What is the status of order 42?"],
        chat_replies=[
            ToolCallsReply([ToolCall("get_order_status", {"order_id": "42"})]),
            TextReply("Order 42 has shipped."),
        ],
    ) as fake:
        report, [call] = _call(fake, [WaitForBotReply(), Say.from_wav(HELLO), WaitForBotReply(), HangUp()])
        second = fake.chat_requests[1]
        speech = [r.json["input"] for r in fake.speech_requests]

    assert call.tool_calls == [{"order_id": "42"}]
    messages = _messages(second)
    assistant, tool = messages[-2], messages[-1]
    assert assistant["role"] == "assistant" and assistant["tool_calls"][0]["function"]["name"] == "get_order_status"
    assert tool["role"] == "tool" and tool["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert "shipped" in tool["content"]
    assert "Order 42 has shipped." in "".join(speech)
    assert report.turns[0].response_latency_ms is not None


@pytest.mark.parametrize(
    ("fault", "endpoint"),
    [
        pytest.param(StatusFault(500), "chat", id="llm-500"),
        pytest.param(Hang(max_s=10), "chat", id="llm-hang"),
        pytest.param(StatusFault(503), "speech", id="tts-503"),
        pytest.param(StatusFault(500), "transcriptions", id="stt-500"),
    ],
)
def test_a_failing_service_is_heard_as_an_apology_and_the_next_turn_works(fault: Any, endpoint: str) -> None:
    with FakeOpenAIServer(
        transcripts=["Where is my order?", "Where is my order?"], chat_replies=["Ignored.", "It shipped today."]
    ) as fake:
        fake.fail_next(fault, endpoint=endpoint, times=2)  # the first attempt and its one retry
        script = [WaitForBotReply(), Say.from_wav(HELLO), WaitForBotReply(), Say.from_wav(HELLO), WaitForBotReply()]
        report, [call] = _call(fake, [*script, HangUp()], llm_kwargs={"first_token_timeout_secs": 1.0})
        speech = [r.json["input"] for r in fake.speech_requests]

    first, second = report.turns[0], report.turns[1]
    # the failed turn still got an answer: the apology, within 2 s of the failure being known
    assert first.response_latency_ms is not None
    assert first.response_latency_ms < 2000 + (1000 if endpoint == "chat" and isinstance(fault, Hang) else 0) + 1500
    assert second.response_latency_ms is not None  # the next turn works
    assert "It shipped today." in "".join(speech) or endpoint in ("chat", "transcriptions")
    if endpoint == "chat":
        assert any("trouble" in s for s in speech) and call.llm.apology_count == 1
    if endpoint == "transcriptions":
        assert any("didn't catch that" in s for s in speech)
