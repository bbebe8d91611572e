"""The user aggregator: when a caller's turn ends, what enters the context, what runs."""

from __future__ import annotations

import asyncio
import time

import pytest
from aggregator_harness import DOWN, UP, FakeBot, Recorder, run, spoken_reply

from phonewire.exceptions import ConfigurationError
from phonewire.frames import (
    BotStartedSpeakingFrame,
    InterimTranscriptionFrame,
    InterruptionTaskFrame,
    LatencyStageFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMMessagesAppendFrame,
    LLMRunFrame,
    LLMSetToolsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from phonewire.pipeline import PipelineTask
from phonewire.processors.aggregators import (
    LLMContext,
    LLMContextAggregatorPair,
    LLMUserAggregator,
    LLMUserAggregatorParams,
)

FAST = LLMUserAggregatorParams(aggregation_timeout=0.05, transcript_timeout_secs=0.4)


def user_only(params: LLMUserAggregatorParams = FAST) -> tuple[LLMContext, LLMUserAggregator, Recorder]:
    context = LLMContext([{"role": "system", "content": "Be brief."}])
    return context, LLMUserAggregator(context, params=params), Recorder()


async def say(task: PipelineTask, *texts: str, finalized: bool = False) -> None:
    await task.queue_frame(UserStartedSpeakingFrame())
    for text in texts:
        await task.queue_frame(TranscriptionFrame(text=text, finalized=finalized))
    await task.queue_frame(UserStoppedSpeakingFrame())


def test_multi_turn_context_of_turn_n_holds_turns_before_it() -> None:
    context = LLMContext([{"role": "system", "content": "Be brief."}])
    pair = LLMContextAggregatorPair(context, user_params=FAST)
    bot = FakeBot([spoken_reply([f"Reply {n}."]) for n in (1, 2, 3)])
    runs, tail = Recorder(), Recorder()

    async def driver(task: PipelineTask) -> None:
        for n in (1, 2, 3):
            await say(task, f"Question {n}?", finalized=True)
            await runs.wait_for(LLMContextFrame, n)
            await tail.wait_for(LLMFullResponseEndFrame, n)

    run([pair.user(), runs, bot, pair.assistant(), tail], driver)
    assert [m["content"] for m in bot.requests[2]] == [
        "Be brief.", "Question 1?", "Reply 1.", "Question 2?", "Reply 2.", "Question 3?",
    ]
    assert [m["role"] for m in bot.requests[1]] == ["system", "user", "assistant", "user"]
    assert context.messages[-1] == {"role": "assistant", "content": "Reply 3."}


def test_final_transcript_after_the_vad_stop_is_waited_for_then_runs() -> None:
    context, user, rec = user_only()

    async def driver(task: PipelineTask) -> None:
        await task.queue_frame(UserStartedSpeakingFrame())
        await task.queue_frame(UserStoppedSpeakingFrame())
        stopped = time.monotonic()
        await asyncio.sleep(0.1)  # the STT is still transcribing (a late final, not a sync point)
        assert not rec.of(LLMContextFrame)
        await task.queue_frame(TranscriptionFrame(text="book a table", finalized=True))
        await rec.wait_for(LLMContextFrame)
        assert time.monotonic() - stopped < FAST.transcript_timeout_secs

    run([user, rec], driver)
    assert context.messages[-1] == {"role": "user", "content": "book a table"}
    stages = [f.stage for f in rec.of(LatencyStageFrame)]
    assert stages == ["turn_end"]
    assert not rec.of(TranscriptionFrame)  # consumed: the LLM gets it through the context


def test_text_without_final_flag_runs_after_the_aggregation_timeout() -> None:
    context, user, rec = user_only()

    async def driver(task: PipelineTask) -> None:
        await say(task, "hello", "there")
        await rec.wait_for(LLMContextFrame)

    run([user, rec], driver)
    assert context.messages[-1]["content"] == "hello there"
    assert len(rec.of(LLMContextFrame)) == 1


def test_interims_never_enter_the_context_and_the_turn_waits_for_the_final() -> None:
    context, user, rec = user_only()

    async def driver(task: PipelineTask) -> None:
        await task.queue_frame(UserStartedSpeakingFrame())
        await task.queue_frame(InterimTranscriptionFrame(text="I wan"))
        await task.queue_frame(UserStoppedSpeakingFrame())
        await asyncio.sleep(0.15)  # past aggregation_timeout: an interim alone must not end the turn
        assert not rec.of(LLMContextFrame)
        await task.queue_frame(TranscriptionFrame(text="I want pizza"))
        await rec.wait_for(LLMContextFrame)

    run([user, rec], driver)
    assert [m["content"] for m in context.messages] == ["Be brief.", "I want pizza"]


def test_a_turn_without_words_is_noise_and_runs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    context, user, rec = user_only()
    caplog.set_level("DEBUG", logger="phonewire.aggregators")

    async def driver(task: PipelineTask) -> None:
        await say(task)
        await asyncio.sleep(FAST.transcript_timeout_secs + 0.2)  # the bounded wait must pass unanswered

    run([user, rec], driver)
    assert not rec.of(LLMContextFrame)
    assert len(context.messages) == 1
    assert "nothing runs" in caplog.text


def test_caller_resuming_during_the_wait_continues_one_turn() -> None:
    context, user, rec = user_only()

    async def driver(task: PipelineTask) -> None:
        await task.queue_frame(UserStartedSpeakingFrame())
        await task.queue_frame(TranscriptionFrame(text="my number is"))
        await task.queue_frame(UserStoppedSpeakingFrame())
        await task.queue_frame(UserStartedSpeakingFrame())  # within aggregation_timeout
        await task.queue_frame(TranscriptionFrame(text="five five five"))
        await task.queue_frame(UserStoppedSpeakingFrame())
        await rec.wait_for(LLMContextFrame)

    run([user, rec], driver)
    assert context.messages[-1]["content"] == "my number is five five five"
    assert len(rec.of(LLMContextFrame)) == 1


def test_transcripts_without_vad_frames_end_the_turn() -> None:
    context, user, rec = user_only()

    async def driver(task: PipelineTask) -> None:
        await task.queue_frame(TranscriptionFrame(text="hi", finalized=True))
        await rec.wait_for(LLMContextFrame)
        await task.queue_frame(TranscriptionFrame(text="still there?"))
        await rec.wait_for(LLMContextFrame, 2)

    run([user, rec], driver)
    assert [m["content"] for m in context.messages[1:]] == ["hi", "still there?"]


def test_run_append_and_tools_frames() -> None:
    context, user, rec = user_only()
    tools = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]

    async def driver(task: PipelineTask) -> None:
        await task.queue_frame(LLMRunFrame())
        await rec.wait_for(LLMContextFrame)
        await task.queue_frame(LLMSetToolsFrame(tools=tools))
        await task.queue_frame(LLMMessagesAppendFrame(messages=[{"role": "user", "content": "hi"}]))
        await task.queue_frame(LLMMessagesAppendFrame(messages=[{"role": "user", "content": "x"}], run_llm=True))
        await rec.wait_for(LLMContextFrame, 2)

    run([user, rec], driver)
    assert len(rec.of(LLMContextFrame)) == 2
    assert [m["content"] for m in context.messages] == ["Be brief.", "hi", "x"]
    assert context.tools == tools
    assert not rec.of(LLMMessagesAppendFrame)  # applied here, not passed on


def test_caller_talking_while_the_reply_is_generated_interrupts_it() -> None:
    context, user, rec = user_only()
    upstream = Recorder(queueless=True)

    async def driver(task: PipelineTask) -> None:
        await say(task, "hello", finalized=True)
        await rec.wait_for(LLMContextFrame)
        await task.queue_frame(UserStartedSpeakingFrame())  # no bot audio yet: the LLM is generating
        await upstream.wait_for(InterruptionTaskFrame, direction=UP)
        await task.queue_frame(UserStoppedSpeakingFrame())

    run([upstream, user, rec], driver)
    assert len(upstream.of(InterruptionTaskFrame, UP)) == 1


def test_no_interruption_once_the_bot_speaks_the_transport_owns_barge_in() -> None:
    context, user, rec = user_only()
    upstream = Recorder(queueless=True)

    async def driver(task: PipelineTask) -> None:
        await say(task, "hello", finalized=True)
        await rec.wait_for(LLMContextFrame)
        await rec.queue_frame(BotStartedSpeakingFrame(), UP)  # as the output sends it upstream
        await task.queue_frame(UserStartedSpeakingFrame())
        await task.queue_frame(UserStoppedSpeakingFrame())

    run([upstream, user, rec], driver)
    assert not upstream.of(InterruptionTaskFrame)


def test_params_refuse_unknown_and_bad_arguments() -> None:
    with pytest.raises(TypeError):
        LLMUserAggregatorParams(not_a_param=None)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError):
        LLMUserAggregatorParams(transcript_timeout_secs=0)
    with pytest.raises(ConfigurationError, match="not a VAD analyzer"):
        LLMUserAggregatorParams(vad_analyzer=object())


def test_downstream_frames_are_forwarded_once() -> None:
    context, user, rec = user_only()

    async def driver(task: PipelineTask) -> None:
        await say(task, "hi", finalized=True)
        await rec.wait_for(LLMContextFrame)

    run([user, rec], driver)
    assert len(rec.of(UserStartedSpeakingFrame, DOWN)) == 1
    assert len(rec.of(UserStoppedSpeakingFrame, DOWN)) == 1
