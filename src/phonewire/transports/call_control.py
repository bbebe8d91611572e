"""The output transport, plus call control: act on a ``TransferCallFrame`` once heard.

A ``TransferCallFrame`` reaches the output in order behind the announcement's audio. Here it
becomes a barrier in the playback queue; a transport-owned task waits (bounded by
``audio_out_drain_timeout_secs``) until the barrier is sent and the provider acknowledged
playing everything before it, then runs the transfer through the transport's
``call_control`` and resolves the frame's ``result``. The frame path itself never waits on
the network. A barge-in during the announcement releases the barrier at once: the caller
asked for the person, so the hand-off goes ahead.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from phonewire.frames import Frame, FrameDirection, InterruptionFrame, TransferCallFrame, TransferResult
from phonewire.transports.output import BARRIER, FastAPIWebsocketOutputTransport

if TYPE_CHECKING:
    from phonewire.transports.fastapi import FastAPIWebsocketTransport

__all__ = ["CallControlOutputTransport"]


class CallControlOutputTransport(FastAPIWebsocketOutputTransport):
    def __init__(self, transport: FastAPIWebsocketTransport, *, name: str | None) -> None:
        super().__init__(transport, name=name)
        self._barriers: set[asyncio.Future[None]] = set()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, TransferCallFrame) and direction is FrameDirection.DOWNSTREAM:
            self._transfer_after_playout(frame)
            return
        if isinstance(frame, InterruptionFrame):
            self._release_barriers()
        await super().process_frame(frame, direction)

    def _transfer_after_playout(self, frame: TransferCallFrame) -> None:
        barrier: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._started and not self._t.closed:
            self._playq.append((BARRIER, barrier, 0))
            self._wakeup.set()
            self._barriers.add(barrier)
        else:
            barrier.set_result(None)
        self._t.spawn(self._transfer(frame, barrier), "transfer", finish=True)

    async def _transfer(self, frame: TransferCallFrame, barrier: asyncio.Future[None]) -> None:
        t = self._t
        result: TransferResult
        try:
            try:
                async with asyncio.timeout(t.params.audio_out_drain_timeout_secs):
                    await barrier
                    await self._all_played.wait()
            except TimeoutError:
                t.log.warning("- announcement not acknowledged in time; transferring anyway")
            finally:
                self._barriers.discard(barrier)
            if t.closed:
                result = TransferResult(False, frame.to, "the call ended before the transfer")
            else:
                # Set before the request: Twilio may stop the stream before its answer arrives.
                t.transferred_to = frame.to
                result = await t.call_control.transfer(frame)
                if not result.ok:
                    t.transferred_to = None
        except Exception as exc:  # a bug must still answer the waiting tool
            t.transferred_to = None
            t.log.exception("! transfer failed unexpectedly")
            result = TransferResult(False, frame.to, f"internal error ({type(exc).__name__})")
        if frame.result is not None and not frame.result.done():
            frame.result.set_result(result)

    def _release_barriers(self) -> None:
        for barrier in list(self._barriers):
            with contextlib.suppress(asyncio.InvalidStateError):
                barrier.set_result(None)
        self._barriers.clear()
