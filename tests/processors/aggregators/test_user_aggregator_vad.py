"""vad_analyzer in LLMUserAggregatorParams (Pipecat 1.x's place): the aggregator runs it."""

from __future__ import annotations

from pathlib import Path

from aggregator_harness import DOWN, UP, Recorder, run

from phonewire.audio.analysis import silence
from phonewire.audio.vad import SileroVADAnalyzer
from phonewire.audio.wav import read_wav
from phonewire.frames import (
    BotStartedSpeakingFrame,
    InputAudioRawFrame,
    InterruptionTaskFrame,
    LLMContextFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from phonewire.pipeline import PipelineTask
from phonewire.processors.aggregators import LLMContext, LLMUserAggregator, LLMUserAggregatorParams

SPEECH = Path(__file__).parents[2] / "fixtures" / "speech" / "hello_8k.wav"


def drive(bot_speaking: bool) -> tuple[LLMContext, Recorder, Recorder]:
    context = LLMContext()
    params = LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer(), aggregation_timeout=0.05)
    user, upstream, rec = LLMUserAggregator(context, params=params), Recorder(queueless=True), Recorder()
    pcm, rate, _ = read_wav(SPEECH)
    audio = pcm + silence(1.2, rate)

    async def driver(task: PipelineTask) -> None:
        if bot_speaking:
            await rec.queue_frame(BotStartedSpeakingFrame(), UP)
        for i in range(0, len(audio), 320):
            await task.queue_frame(InputAudioRawFrame(audio=audio[i : i + 320], sample_rate=rate))
        await rec.wait_for(UserStoppedSpeakingFrame, direction=DOWN)
        await task.queue_frame(TranscriptionFrame(text="hello", finalized=True))
        await rec.wait_for(LLMContextFrame)

    run([upstream, user, rec], driver)
    return context, upstream, rec


def test_aggregator_vad_makes_the_turn_and_broadcasts_speaking_frames() -> None:
    context, upstream, rec = drive(bot_speaking=False)
    assert context.messages == [{"role": "user", "content": "hello"}]
    for frames in (rec, upstream):
        direction = DOWN if frames is rec else UP
        assert len(frames.of(UserStartedSpeakingFrame, direction)) == 1
        assert len(frames.of(UserStoppedSpeakingFrame, direction)) == 1
    assert not upstream.of(InterruptionTaskFrame)


def test_aggregator_vad_interrupts_a_speaking_bot() -> None:
    _, upstream, _ = drive(bot_speaking=True)
    assert len(upstream.of(InterruptionTaskFrame, UP)) == 1
