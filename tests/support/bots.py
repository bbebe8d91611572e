"""Small scripted bots for transport tests."""

from __future__ import annotations

from phonewire.frames import (
    EndTaskFrame,
    Frame,
    FrameDirection,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from phonewire.processors import FrameProcessor

UP = FrameDirection.UPSTREAM


class KeypadBot(FrameProcessor):
    """'1' plays ``speech`` as one TTS utterance (in 100 ms frames at ``rate``), '*'
    interrupts, '#' ends the call; every DTMF frame is remembered in ``digits``."""

    def __init__(self, speech: bytes, rate: int = 24000) -> None:
        super().__init__()
        self.speech = speech
        self.rate = rate
        self.digits: list[str] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, InputDTMFFrame):
            self.digits.append(frame.button.value)
            await self._on_key(frame.button.value)
            return
        if isinstance(frame, OutputAudioRawFrame):
            return
        await self.push_frame(frame, direction)

    async def _on_key(self, key: str) -> None:
        if key == "1":
            await self.speak(self.speech)
        elif key == "*":
            await self.push_frame(InterruptionFrame())
        elif key == "#":
            await self.push_frame(EndTaskFrame(reason="caller pressed #"), UP)

    async def speak(self, pcm: bytes) -> None:
        await self.push_frame(TTSStartedFrame())
        step = self.rate // 10 * 2
        for i in range(0, len(pcm), step):
            await self.push_frame(TTSAudioRawFrame(audio=pcm[i : i + step], sample_rate=self.rate))
        await self.push_frame(TTSStoppedFrame())
