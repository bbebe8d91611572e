"""The assistant aggregator: the reply as far as the caller heard it; tool calls and results."""

from __future__ import annotations

from typing import Any

from aggregator_harness import DOWN, UP, Recorder, queue_in_order, run, spoken_reply
from openai.types.chat import ChatCompletionMessageParam
from pydantic import TypeAdapter

from phonewire.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSTextFrame,
)
from phonewire.pipeline import PipelineTask
from phonewire.processors.aggregators import (
    AssistantTurnStoppedMessage,
    LLMAssistantAggregator,
    LLMContext,
)

MESSAGES = TypeAdapter(list[ChatCompletionMessageParam])


def play(frames: list[Frame], **kwargs: Any) -> tuple[LLMContext, Recorder, list[AssistantTurnStoppedMessage]]:
    """Feed ``frames`` in order to an assistant aggregator (a queueless recorder before it
    catches what it pushes upstream)."""
    context = LLMContext([{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}])
    assistant, upstream, tail = LLMAssistantAggregator(context, **kwargs), Recorder(queueless=True), Recorder()
    stopped: list[AssistantTurnStoppedMessage] = []

    @assistant.event_handler("on_assistant_turn_stopped")
    async def on_stopped(_: Any, message: AssistantTurnStoppedMessage) -> None:
        stopped.append(message)

    async def driver(task: PipelineTask) -> None:
        await queue_in_order(task, frames, tail)

    run([upstream, assistant, tail], driver)
    MESSAGES.validate_python(context.messages)  # always valid for the OpenAI API
    return context, upstream, stopped


def words(*ws: str) -> list[Frame]:
    return [TTSTextFrame(text=w) for w in ws]


def test_reply_heard_to_the_end_is_recorded_in_full() -> None:
    context, _, stopped = play(spoken_reply(["Hello", "there."], ["How", "can", "I", "help?"]))
    assert context.messages[-1] == {"role": "assistant", "content": "Hello there. How can I help?"}
    assert [m.interrupted for m in stopped] == [False]


def test_barge_in_mid_reply_keeps_only_the_heard_part_marked_interrupted() -> None:
    frames = [
        LLMFullResponseStartFrame(),
        BotStartedSpeakingFrame(),
        *words("Your", "order", "shipped", "on", "Monday", "and", "arrives", "Friday."),
        LLMFullResponseEndFrame(),
        InterruptionFrame(),
        BotStoppedSpeakingFrame(interrupted=True, heard_text="Your order shipped", heard_ms=900),
    ]
    context, _, stopped = play(frames)
    assert context.messages[-1] == {"role": "assistant", "content": "Your order shipped —"}
    assert stopped[-1].interrupted and stopped[-1].heard_ms == 900


def test_bot_stop_before_the_interruption_frame_gives_the_same_context() -> None:
    frames = [
        LLMFullResponseStartFrame(),
        BotStartedSpeakingFrame(),
        *words("Your", "order", "shipped", "on", "Monday."),
        BotStoppedSpeakingFrame(interrupted=True, heard_text="Your order", heard_ms=500),
        InterruptionFrame(),
        LLMFullResponseEndFrame(),
    ]
    context, _, _ = play(frames)
    assert context.messages[-1] == {"role": "assistant", "content": "Your order —"}
    assert sum(m["role"] == "assistant" for m in context.messages) == 1


def test_reply_over_two_utterances_interrupted_in_the_second_keeps_the_first() -> None:
    frames = [
        LLMFullResponseStartFrame(),
        BotStartedSpeakingFrame(),
        *words("First", "sentence."),
        BotStoppedSpeakingFrame(),
        BotStartedSpeakingFrame(),
        *words("Second", "one", "never", "finished."),
        LLMFullResponseEndFrame(),
        BotStoppedSpeakingFrame(interrupted=True, heard_text="Second one"),
        InterruptionFrame(),
    ]
    context, _, _ = play(frames)
    assert context.messages[-1]["content"] == "First sentence. Second one —"


def test_interruption_before_any_audio_records_no_assistant_message() -> None:
    frames = [LLMFullResponseStartFrame(), *words("Never", "heard."), InterruptionFrame(), LLMFullResponseEndFrame()]
    context, _, stopped = play(frames)
    assert [m["role"] for m in context.messages] == ["system", "user"]
    assert stopped and stopped[-1].content is None and stopped[-1].interrupted


def test_without_heard_text_the_share_heard_ms_over_sent_ms_is_kept_at_a_word() -> None:
    frames = [
        LLMFullResponseStartFrame(),
        BotStartedSpeakingFrame(),
        *words("one", "two", "three", "four"),  # "one two three four": 18 chars
        BotStoppedSpeakingFrame(interrupted=True, heard_ms=500, sent_ms=1000),  # 9 chars: "one two t"
    ]
    context, _, _ = play(frames)
    assert context.messages[-1]["content"] == "one two —"


def test_llm_text_is_recorded_when_no_tts_sends_text() -> None:
    text = [LLMTextFrame(text="Hi"), LLMTextFrame(text=" there!")]
    frames = [LLMFullResponseStartFrame(), *text, LLMFullResponseEndFrame()]
    context, _, _ = play(frames)  # no speech at all: a text-only pipeline records at the end
    assert context.messages[-1] == {"role": "assistant", "content": "Hi there!"}


def test_tts_speak_text_outside_a_reply_is_recorded_once_heard() -> None:
    frames = [BotStartedSpeakingFrame(), *words("Welcome", "to", "Acme."), BotStoppedSpeakingFrame()]
    context, _, _ = play(frames)
    assert context.messages[-1] == {"role": "assistant", "content": "Welcome to Acme."}


def test_two_parallel_calls_round_trip_and_one_rerun_upstream() -> None:
    frames = [
        LLMFullResponseStartFrame(),
        LLMFullResponseEndFrame(),
        FunctionCallInProgressFrame(function_name="lookup_order", tool_call_id="call_A", arguments={"id": "42"}),
        FunctionCallInProgressFrame(function_name="get_time", tool_call_id="call_B", arguments={}),
        FunctionCallResultFrame(function_name="lookup_order", tool_call_id="call_A", result={"status": "shipped"}),
        FunctionCallResultFrame(function_name="get_time", tool_call_id="call_B", result="12:00"),
    ]
    context, upstream, _ = play(frames)
    assert context.messages[2:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_A", "type": "function", "function": {"name": "lookup_order", "arguments": '{"id": "42"}'}},
                {"id": "call_B", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_A", "content": '{"status": "shipped"}'},
        {"role": "tool", "tool_call_id": "call_B", "content": "12:00"},
    ]
    reruns = upstream.of(LLMContextFrame, UP)
    assert len(reruns) == 1 and reruns[0].context is context
    assert not upstream.of(LLMContextFrame, DOWN)


def test_heard_preamble_becomes_the_tool_call_messages_content() -> None:
    frames = [
        LLMFullResponseStartFrame(),
        BotStartedSpeakingFrame(),
        *words("Let", "me", "check."),
        LLMFullResponseEndFrame(),
        FunctionCallInProgressFrame(function_name="lookup_order", tool_call_id="call_A"),
        BotStoppedSpeakingFrame(),
        FunctionCallResultFrame(function_name="lookup_order", tool_call_id="call_A", result="shipped"),
    ]
    context, upstream, _ = play(frames)
    assert context.messages[2]["content"] == "Let me check."
    assert context.messages[2]["tool_calls"][0]["id"] == "call_A"
    assert context.messages[3] == {"role": "tool", "tool_call_id": "call_A", "content": "shipped"}
    assert len(context.messages) == 4
    assert len(upstream.of(LLMContextFrame, UP)) == 1


def test_cancelled_call_gets_a_tool_message_and_nothing_reruns() -> None:
    frames = [
        LLMFullResponseStartFrame(),
        LLMFullResponseEndFrame(),
        FunctionCallInProgressFrame(function_name="slow", tool_call_id="call_A", cancel_on_interruption=True),
        FunctionCallInProgressFrame(function_name="keeps", tool_call_id="call_B"),
        InterruptionFrame(),
        FunctionCallCancelFrame(function_name="slow", tool_call_id="call_A"),
        FunctionCallResultFrame(function_name="keeps", tool_call_id="call_B", result="late but kept"),
    ]
    context, upstream, _ = play(frames)
    tools = {m["tool_call_id"]: m["content"] for m in context.messages if m["role"] == "tool"}
    assert tools == {"call_A": "cancelled: the caller interrupted", "call_B": "late but kept"}
    assert not upstream.of(LLMContextFrame)


def test_a_caller_turn_during_a_call_sees_a_valid_context() -> None:
    frames = [
        LLMFullResponseStartFrame(),
        LLMFullResponseEndFrame(),
        FunctionCallInProgressFrame(function_name="slow", tool_call_id="call_A"),
    ]
    context, _, _ = play(frames)
    assert context.messages[-1] == {
        "role": "tool", "tool_call_id": "call_A", "content": "in progress: the result is not back yet",
    }


def test_result_run_llm_false_does_not_rerun() -> None:
    frames = [
        LLMFullResponseStartFrame(),
        LLMFullResponseEndFrame(),
        FunctionCallInProgressFrame(function_name="f", tool_call_id="c1"),
        FunctionCallResultFrame(function_name="f", tool_call_id="c1", result=None, run_llm=False),
    ]
    context, upstream, _ = play(frames)
    assert not upstream.of(LLMContextFrame)
    assert context.messages[-1]["content"] == "null"


def test_custom_interruption_suffix() -> None:
    from phonewire.processors.aggregators import LLMAssistantAggregatorParams

    frames = [
        LLMFullResponseStartFrame(),
        BotStartedSpeakingFrame(),
        *words("Hello", "there"),
        BotStoppedSpeakingFrame(interrupted=True, heard_text="Hello"),
    ]
    context, _, _ = play(frames, params=LLMAssistantAggregatorParams(interruption_suffix="…"))
    assert context.messages[-1]["content"] == "Hello…"
