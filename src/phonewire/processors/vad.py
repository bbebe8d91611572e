"""VADProcessor: voice activity detection anywhere in a pipeline.

The transport runs VAD itself when given ``vad_analyzer`` (the usual place: it sees the
caller's audio first and at the wire rate). Use this processor instead when the VAD should
hear audio after another processor (a noise filter, a mixer) or in a pipeline without a
phonewire transport. It passes every frame on and adds the turn frames; with
``interruptions=True`` it also interrupts the bot when the caller starts talking while the bot
is speaking (it learns that from the Bot*SpeakingFrames the output sends upstream).
"""

from __future__ import annotations

import time

from phonewire.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    FrameDirection,
    InputAudioRawFrame,
    InterruptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from phonewire.processors.frame_processor import FrameProcessor

__all__ = ["VADProcessor"]


class VADProcessor(FrameProcessor):
    def __init__(self, vad_analyzer: object, *, interruptions: bool = False, name: str | None = None) -> None:
        super().__init__(name=name)
        self.vad = vad_analyzer
        self.interruptions = interruptions
        self.bot_speaking = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await self.push_frame(frame, direction)
        if isinstance(frame, BotStartedSpeakingFrame):
            self.bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self.bot_speaking = False
        elif isinstance(frame, InputAudioRawFrame) and direction is FrameDirection.DOWNSTREAM:
            await self._analyze(frame)

    async def _analyze(self, frame: InputAudioRawFrame) -> None:
        vad = self.vad
        if vad.sample_rate != frame.sample_rate:  # type: ignore[attr-defined]
            vad.set_sample_rate(frame.sample_rate)  # type: ignore[attr-defined]
        for transition in vad.analyze(frame.audio):  # type: ignore[attr-defined]
            if transition.state.name == "SPEAKING":
                await self._started()
            elif transition.state.name == "QUIET":
                await self._stopped()

    async def _started(self) -> None:
        params = self.vad.params  # type: ignore[attr-defined]
        await self.push_frame(VADUserStartedSpeakingFrame(start_secs=params.start_secs, timestamp=time.time()))
        await self.push_frame(UserStartedSpeakingFrame())
        if self.interruptions and self.bot_speaking:
            await self.push_frame(InterruptionFrame())

    async def _stopped(self) -> None:
        params = self.vad.params  # type: ignore[attr-defined]
        await self.push_frame(VADUserStoppedSpeakingFrame(stop_secs=params.stop_secs, timestamp=time.time()))
        await self.push_frame(UserStoppedSpeakingFrame())
