"""A segmented STT's pauses, exactly: which segment's words are in, an empty segment, late
words, and a turn taken back when the caller goes on before hearing its reply.

The demo's "Thanks, goodbye." (a 0.25 s pause after the comma) once ended a turn on "Thanks."
(Whisper's transcript of the first segment arrived while "goodbye" was being said and was taken
for the last segment's text), interrupted that reply when the caller's "goodbye" came, and then
lost "goodbye" (its transcript started a turn with no silence clock).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "processors" / "aggregators"))

from aggregator_harness import UP, Recorder, run

from phonewire.frames import (
    InterruptionTaskFrame,
    LLMContextFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from phonewire.pipeline import PipelineTask
from phonewire.processors.aggregators import LLMContext, LLMUserAggregator, LLMUserAggregatorParams
from phonewire.services.stt_service import SegmentTranscriptionFrame, STTSegmentEmptyFrame, STTSegmentSubmittedFrame
from phonewire.turns import SpeechTimeoutUserTurnStopStrategy, UserTurnStrategies
from phonewire.turns.controller import UserTurnController

TIMEOUT = 1.5


def controller() -> UserTurnController:
    strategies = UserTurnStrategies(stop=[SpeechTimeoutUserTurnStopStrategy(timeout=0.0)])
    return UserTurnController(strategies, aggregation_timeout=0.15, transcript_timeout=TIMEOUT)


def pause(c: UserTurnController, at: float, segment: int) -> None:
    c.speech_started(bot_speaking=False)
    c.speech_stopped(at, stop_secs=0.2)
    c.segment_submitted(segment)


def test_a_late_transcript_of_an_earlier_pause_is_not_taken_for_the_last_one() -> None:
    c = controller()
    pause(c, 10.0, 1)  # "Thanks," ... 0.25 s ... "goodbye"
    c.speech_started(bot_speaking=False)
    c.segment_result(1, "Thanks.", 10.3, bot_speaking=False)  # arrives while "goodbye" is said
    c.speech_stopped(11.0, stop_secs=0.2)
    c.segment_submitted(2)
    assert c.deadline("Thanks.", 11.05) == 10.8 + TIMEOUT  # waits for segment 2, bounded
    c.segment_result(2, "Goodbye.", 11.1, bot_speaking=False)
    assert c.deadline("Thanks. Goodbye.", 11.1) == 10.8  # the timer strategy: due at once


def test_an_empty_segment_means_the_transcript_is_in_not_a_wait_for_the_timeout() -> None:
    c = controller()
    pause(c, 10.0, 1)
    c.segment_result(1, "Yes.", 10.1, bot_speaking=False)
    pause(c, 11.0, 2)  # a cough: Whisper hears nothing
    assert c.deadline("Yes.", 11.01) == 10.8 + TIMEOUT
    c.segment_result(2, "", 11.05, bot_speaking=False)
    assert c.deadline("Yes.", 11.05) == 10.8


def test_words_that_start_a_turn_after_the_caller_went_quiet_still_end_it() -> None:
    c = controller()
    assert c.transcript("Goodbye.", True, 20.0, bot_speaking=False)  # the turn starts with them
    deadline = c.deadline("Goodbye.", 20.0)
    assert deadline is not None and math.isfinite(deadline) and deadline <= 20.0


def params() -> LLMUserAggregatorParams:
    strategies = UserTurnStrategies(stop=[SpeechTimeoutUserTurnStopStrategy(timeout=0.05)])
    return LLMUserAggregatorParams(user_turn_strategies=strategies)


async def segment(task: PipelineTask, number: int, text: str) -> None:
    """One pause as the transport and a SegmentedSTTService deliver it."""
    await task.queue_frame(VADUserStartedSpeakingFrame(start_secs=0.2))
    await task.queue_frame(UserStartedSpeakingFrame())
    await task.queue_frame(VADUserStoppedSpeakingFrame(stop_secs=0.2))
    await task.queue_frame(STTSegmentSubmittedFrame(segment=number))
    await task.queue_frame(UserStoppedSpeakingFrame())
    if text:
        await task.queue_frame(SegmentTranscriptionFrame(text=text, finalized=True, segment=number))
    else:
        await task.queue_frame(STTSegmentEmptyFrame(segment=number))


def test_a_caller_who_goes_on_before_hearing_the_reply_continues_the_same_turn() -> None:
    context = LLMContext([])
    upstream, user, rec = Recorder(queueless=True), LLMUserAggregator(context, params=params()), Recorder()

    async def driver(task: PipelineTask) -> None:
        await segment(task, 1, "Thanks.")
        await rec.wait_for(LLMContextFrame)  # the turn ended; its reply is being generated...
        await segment(task, 2, "Goodbye.")  # ... when the caller goes on
        await rec.wait_for(LLMContextFrame, count=2)

    run([upstream, user, rec], driver)
    assert len(upstream.of(InterruptionTaskFrame, UP)) == 1  # the unheard reply was cancelled
    assert context.messages == [{"role": "user", "content": "Thanks. Goodbye."}]  # no word lost
    assert len(rec.of(UserStoppedSpeakingFrame)) == 2


def test_a_noise_segment_ends_the_turn_without_the_transcript_timeout() -> None:
    context = LLMContext([])
    user, rec = LLMUserAggregator(context, params=params()), Recorder()

    async def driver(task: PipelineTask) -> None:
        await segment(task, 1, "What time is it?")
        await segment(task, 2, "")
        await rec.wait_for(LLMContextFrame, timeout=1.0)  # well before the 1.5 s transcript bound

    run([user, rec], driver)
    assert context.messages == [{"role": "user", "content": "What time is it?"}]
