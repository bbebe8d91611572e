"""EchoProcessor: plays the caller's audio back. The smallest useful bot, used by the
example, the tests and the benchmarks."""

from __future__ import annotations

from phonewire.frames import Frame, FrameDirection, InputAudioRawFrame, OutputAudioRawFrame
from phonewire.processors.frame_processor import FrameProcessor

__all__ = ["EchoProcessor"]


class EchoProcessor(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, InputAudioRawFrame):
            await self.push_frame(OutputAudioRawFrame(audio=frame.audio, sample_rate=frame.sample_rate))
            return
        await self.push_frame(frame, direction)
