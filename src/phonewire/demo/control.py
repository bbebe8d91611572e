"""CallControl: when the demo call ends - the caller's goodbye, ``#``, or the call's time limit.

Placed between the LLM and the TTS, so it sees each reply end (``LLMFullResponseEndFrame``)
and the caller's keys. Ending is always graceful: the reply (or a closing line) is handed to
the TTS first, then ``EndTaskFrame`` goes upstream; the task's ``EndFrame`` reaches the TTS
after that text, so the goodbye plays out before the transport hangs up (over the provider's
REST API). The goodbye is decided from the caller's words in the shared ``LLMContext``, so the
rules brain and a real LLM end the call the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from phonewire.demo.brain import last_user_text, says_goodbye
from phonewire.frames import (
    EndTaskFrame,
    Frame,
    FrameDirection,
    InputDTMFFrame,
    LLMFullResponseEndFrame,
    StartFrame,
    TTSSpeakFrame,
)
from phonewire.processors.aggregators import LLMContext
from phonewire.processors.frame_processor import FrameProcessor

__all__ = ["CallControl"]

logger = logging.getLogger("phonewire.demo")

POUND_GOODBYE = "Thanks for calling. Goodbye."
TIMEOUT_GOODBYE = "We have reached the end of this demo call. Goodbye."


class CallControl(FrameProcessor):
    def __init__(self, context: LLMContext, *, max_call_secs: float = 120.0) -> None:
        super().__init__()
        self.context = context
        self.max_call_secs = max_call_secs
        #: Why the bot ended the call ("goodbye", "pound", "timeout"), None while it goes on.
        self.ended_by: str | None = None
        self._timer: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame) and self._timer is None:
            self._timer = asyncio.get_running_loop().create_task(self._call_timer(), name="demo:call-timer")
        elif isinstance(frame, LLMFullResponseEndFrame):
            if says_goodbye(last_user_text(self.context.get_messages())):
                await self._end("goodbye", None)
        elif isinstance(frame, InputDTMFFrame) and frame.button.value == "#":
            await self._end("pound", POUND_GOODBYE)

    async def _call_timer(self) -> None:
        await asyncio.sleep(self.max_call_secs)
        await self._end("timeout", TIMEOUT_GOODBYE)

    async def _end(self, why: str, closing: str | None) -> None:
        if self.ended_by is not None:
            return
        self.ended_by = why
        logger.info("- demo: ending the call (%s)", why)
        if closing:
            await self.push_frame(TTSSpeakFrame(text=closing))
        # Ordered after the reply's text: the transport plays it out, then hangs up.
        await self.push_frame(EndTaskFrame(reason=f"demo {why}"), FrameDirection.UPSTREAM)

    async def cleanup(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        await super().cleanup()
