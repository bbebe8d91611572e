"""The user aggregator under strategies: turn frames, mute, idle (frames in, frames out)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "processors" / "aggregators"))

from aggregator_harness import UP, Recorder, run

from phonewire.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    InterruptionFrame,
    LLMContextFrame,
    TextFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from phonewire.pipeline import PipelineTask
from phonewire.processors.aggregators import LLMContext, LLMUserAggregator, LLMUserAggregatorParams
from phonewire.turns import (
    FunctionCallUserMuteStrategy,
    MuteUntilFirstBotCompleteUserMuteStrategy,
    SpeechTimeoutUserTurnStopStrategy,
    UserTurnStrategies,
)


def timer_only(**kw: object) -> LLMUserAggregatorParams:
    strategies = UserTurnStrategies(stop=[SpeechTimeoutUserTurnStopStrategy(timeout=0.3)])
    return LLMUserAggregatorParams(user_turn_strategies=strategies, aggregation_timeout=0.05, **kw)  # type: ignore[arg-type]


async def segment(task: PipelineTask, text: str) -> None:
    """One VAD segment as the transport + a segmented STT deliver it."""
    await task.queue_frame(VADUserStartedSpeakingFrame(start_secs=0.2))
    await task.queue_frame(UserStartedSpeakingFrame())
    await task.queue_frame(VADUserStoppedSpeakingFrame(stop_secs=0.2))
    await task.queue_frame(UserStoppedSpeakingFrame())
    await task.queue_frame(TranscriptionFrame(text=text, finalized=True))


def test_a_turn_with_pauses_is_one_start_one_stop_one_run_downstream() -> None:
    context = LLMContext([])
    user, rec = LLMUserAggregator(context, params=timer_only()), Recorder()

    async def driver(task: PipelineTask) -> None:
        await segment(task, "I need milk,")
        await rec.wait_for(VADUserStoppedSpeakingFrame)
        await segment(task, "and bread.")  # resumed within the 0.3 s timeout
        await rec.wait_for(LLMContextFrame)

    run([user, rec], driver)
    assert len(rec.of(UserStartedSpeakingFrame)) == 1
    assert len(rec.of(UserStoppedSpeakingFrame)) == 1
    assert len(rec.of(VADUserStoppedSpeakingFrame)) == 2  # the pauses still reach the output's clock
    assert len(rec.of(LLMContextFrame)) == 1
    assert context.messages == [{"role": "user", "content": "I need milk, and bread."}]


def test_muted_until_the_greeting_ends_then_heard() -> None:
    context = LLMContext([])
    params = timer_only(user_mute_strategies=[MuteUntilFirstBotCompleteUserMuteStrategy()])
    user, rec = LLMUserAggregator(context, params=params), Recorder(queueless=True)
    upstream = Recorder(queueless=True)

    async def driver(task: PipelineTask) -> None:
        await rec.queue_frame(BotStartedSpeakingFrame(), UP)
        await task.queue_frame(InterruptionFrame())  # the transport's barge-in during the greeting
        await segment(task, "Hello?")
        await task.queue_frame(TextFrame(text="marker"))  # data frames keep their order: "Hello?" is done
        await rec.wait_for(TextFrame)
        await rec.queue_frame(BotStoppedSpeakingFrame(), UP)
        await segment(task, "What time is it?")
        await rec.wait_for(LLMContextFrame)

    run([upstream, user, rec], driver)
    assert not rec.of(InterruptionFrame)  # stopped at the aggregator
    assert context.messages == [{"role": "user", "content": "What time is it?"}]


def test_muted_while_a_function_call_runs() -> None:
    context = LLMContext([])
    params = timer_only(user_mute_strategies=[FunctionCallUserMuteStrategy()])
    user, rec = LLMUserAggregator(context, params=params), Recorder()

    async def driver(task: PipelineTask) -> None:
        user._shared.function_calls.add("call-1")  # the assistant side saw FunctionCallInProgressFrame
        await segment(task, "Hello?")
        await task.queue_frame(TextFrame(text="marker"))
        await rec.wait_for(TextFrame)
        user._shared.function_calls.clear()  # ... and its result
        await segment(task, "Thanks.")
        await rec.wait_for(LLMContextFrame)

    run([user, rec], driver)
    assert context.messages == [{"role": "user", "content": "Thanks."}]


def test_an_idle_caller_is_asked_whether_they_are_still_there() -> None:
    context = LLMContext([])
    params = timer_only(user_idle_timeout=0.1, user_idle_prompt="Ask if the caller is still there.")
    user, rec = LLMUserAggregator(context, params=params), Recorder(queueless=True)
    idle: list[object] = []

    @user.event_handler("on_user_turn_idle")
    async def on_idle(aggregator: object) -> None:
        idle.append(aggregator)

    async def driver(task: PipelineTask) -> None:
        await rec.queue_frame(BotStartedSpeakingFrame(), UP)
        await rec.queue_frame(BotStoppedSpeakingFrame(), UP)
        await rec.wait_for(LLMContextFrame)

    run([Recorder(queueless=True), user, rec], driver)
    assert idle == [user]
    assert context.messages == [{"role": "system", "content": "Ask if the caller is still there."}]
