"""VADProcessor: turn frames from audio anywhere in a pipeline, interruptions only over the bot."""

from __future__ import annotations

import asyncio
from pathlib import Path

from phonewire.audio.analysis import silence
from phonewire.audio.vad import SileroVADAnalyzer
from phonewire.audio.wav import read_wav
from phonewire.frames import (
    BotStartedSpeakingFrame,
    EndFrame,
    Frame,
    FrameDirection,
    InputAudioRawFrame,
    InterruptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from phonewire.pipeline import Pipeline, PipelineTask
from phonewire.processors import FrameProcessor
from phonewire.processors.vad import VADProcessor

SPEECH = Path(__file__).parents[1] / "fixtures" / "speech" / "hello_8k.wav"


class Collector(FrameProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if not isinstance(frame, InputAudioRawFrame):
            self.names.append(type(frame).__name__)
        await self.push_frame(frame, direction)


def run(bot_speaking: bool) -> list[str]:
    async def main() -> list[str]:
        pcm, rate, _ = read_wav(SPEECH)
        audio = pcm + silence(1.2, rate)
        vad, sink = VADProcessor(SileroVADAnalyzer(), interruptions=True), Collector()
        task = PipelineTask(Pipeline([vad, sink]))
        if bot_speaking:
            await task.queue_frame(BotStartedSpeakingFrame())
        frames = [InputAudioRawFrame(audio=audio[i : i + 320], sample_rate=rate) for i in range(0, len(audio), 320)]
        await task.queue_frames([*frames, EndFrame()])
        await asyncio.wait_for(task.run(), 10)
        return [
            n for n in sink.names if n in ("UserStartedSpeakingFrame", "UserStoppedSpeakingFrame", "InterruptionFrame")
        ]

    return asyncio.run(main())


def test_speech_produces_one_turn_and_no_interruption_when_the_bot_is_silent() -> None:
    assert run(bot_speaking=False) == [UserStartedSpeakingFrame.__name__, UserStoppedSpeakingFrame.__name__]


def test_speech_over_the_bot_also_interrupts_it() -> None:
    assert run(bot_speaking=True) == [
        UserStartedSpeakingFrame.__name__,
        InterruptionFrame.__name__,
        UserStoppedSpeakingFrame.__name__,
    ]
