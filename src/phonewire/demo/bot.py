"""The echo bot: no models and no cloud services; ``phonewire serve`` runs it when no ``--bot``
is given, and the transport and provider tests call it. (The conversing demo that
``phonewire demo`` runs is ``phonewire.demo.conversation``.)

It greets the caller, listens (the transport's VAD marks the caller's turns), and when the
caller stops talking plays back what they said. It reads back DTMF digits. ``#`` or the
maximum call length ends the call with a goodbye, after which the transport plays the
goodbye out, hangs up and closes.

A real bot has the same shape: replace "play back the recording" with STT -> LLM -> TTS.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from importlib import resources

from phonewire.audio.wav import read_wav
from phonewire.frames import (
    EndTaskFrame,
    Frame,
    FrameDirection,
    InputAudioRawFrame,
    InputDTMFFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from phonewire.processors.frame_processor import FrameProcessor

__all__ = ["DemoBot", "prompt"]

#: VAD reports a turn ~200 ms after it began; keep this much audio from before the report.
PRE_ROLL_SECS = 0.4
#: Longest stretch of caller speech the bot repeats.
MAX_REPEAT_SECS = 10.0
DIGIT_NAMES = {
    "0": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
    "*": "star",
}


@functools.cache
def prompt(name: str) -> tuple[bytes, int]:
    """A committed recording (8 kHz μ-law WAV) as PCM16 and its rate."""
    data = resources.files("phonewire.demo").joinpath("prompts", f"{name}.wav").read_bytes()
    pcm, rate, _ = read_wav(data)
    return pcm, rate


class DemoBot(FrameProcessor):
    def __init__(self, *, max_call_secs: float = 120.0) -> None:
        super().__init__()
        self.max_call_secs = max_call_secs
        self._heard: deque[bytes] = deque()
        self._heard_bytes = 0
        self._rate = 8000
        self._listening = False
        self._ending = False
        self._timer: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            self._timer = asyncio.get_running_loop().create_task(self._call_timer())
            await self._say(*prompt("greeting"))
        elif isinstance(frame, InputAudioRawFrame):
            self._remember(frame)
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._listening = True
            await self.push_frame(frame, direction)
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._listening = False
            await self.push_frame(frame, direction)
            await self._repeat()
        elif isinstance(frame, InputDTMFFrame):
            await self._on_key(frame.button.value)
        else:
            await self.push_frame(frame, direction)

    def _remember(self, frame: InputAudioRawFrame) -> None:
        """Keep the caller's current turn (plus a pre-roll) for playing it back."""
        self._rate = frame.sample_rate
        self._heard.append(frame.audio)
        self._heard_bytes += len(frame.audio)
        limit = int((MAX_REPEAT_SECS if self._listening else PRE_ROLL_SECS) * self._rate * 2)
        while self._heard_bytes > limit and self._heard:
            self._heard_bytes -= len(self._heard.popleft())

    async def _repeat(self) -> None:
        if self._ending:
            return
        speech = b"".join(self._heard)
        self._heard.clear()
        self._heard_bytes = 0
        await self._say(speech, self._rate)

    async def _on_key(self, key: str) -> None:
        if key == "#":
            await self._goodbye("goodbye")
        elif key in DIGIT_NAMES and not self._ending:
            await self._say(*prompt(f"digit_{DIGIT_NAMES[key]}"))

    async def _goodbye(self, which: str) -> None:
        if self._ending:
            return
        self._ending = True
        await self._say(*prompt(which))
        # Ordered after the goodbye's audio: the transport plays it out, then hangs up.
        await self.push_frame(EndTaskFrame(reason=f"demo {which}"), FrameDirection.UPSTREAM)

    async def _call_timer(self) -> None:
        await asyncio.sleep(self.max_call_secs)
        await self._goodbye("timeout")

    async def _say(self, pcm: bytes, rate: int) -> None:
        """Send one utterance the way a TTS service does: started, audio chunks, stopped."""
        await self.push_frame(TTSStartedFrame())
        step = rate // 10 * 2  # 100 ms chunks
        for i in range(0, len(pcm), step):
            await self.push_frame(TTSAudioRawFrame(audio=pcm[i : i + step], sample_rate=rate))
        await self.push_frame(TTSStoppedFrame())

    async def cleanup(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        await super().cleanup()
