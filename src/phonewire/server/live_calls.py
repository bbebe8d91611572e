"""The calls this process is serving, by verified call id, and who waits for their callbacks.

A provider's callback (status, answering-machine verdict) arrives on an HTTP route, while
the call it is about lives in a WebSocket task. The registry connects the two: ``create_app``
registers each call's transport once its stream token verified the call id (an unverified
stream is never registered, so a callback cannot be steered into it), and the signed callback
routes look the call up by (provider, call id) and push the event into its pipeline.

Callbacks for calls that are not streaming (an outbound call still ringing, a warm
transfer's second leg) are matched by a random ``ref`` placed in the callback URL (signed by
the provider with the rest of the URL) and delivered to a bounded queue per ref. Every
registration is removed when its call ends; the queues drop their oldest event when full.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from phonewire.frames import AnsweringMachineFrame, CallStatusFrame, FrameDirection

__all__ = ["LiveCalls"]

logger = logging.getLogger("phonewire.server")

#: Events kept per waiting ref; a slow reader loses the oldest, never blocks a callback.
QUEUE_DEPTH = 16
#: Refs waited on at once (outbound calls in progress, warm transfers).
MAX_REFS = 10_000

Listener = Callable[[CallStatusFrame | AnsweringMachineFrame, str], None]


class LiveCalls:
    def __init__(self) -> None:
        self._calls: dict[tuple[str, str], Any] = {}
        self._refs: dict[str, asyncio.Queue[Any]] = {}
        self._ref_calls: dict[str, tuple[str, str]] = {}
        #: Called for every callback event (event, ref) - ``place_call`` users' status events.
        self.listeners: list[Listener] = []

    def __len__(self) -> int:
        return len(self._calls)

    # --- live calls ------------------------------------------------------------------------

    def add(self, provider: str, call_id: str, transport: Any) -> None:
        self._calls[(provider, call_id)] = transport

    def remove(self, provider: str, call_id: str, transport: Any) -> None:
        if self._calls.get((provider, call_id)) is transport:
            del self._calls[(provider, call_id)]

    def get(self, provider: str, call_id: str | None) -> Any:
        return self._calls.get((provider, call_id)) if call_id else None

    # --- refs ------------------------------------------------------------------------------

    def expect(self, ref: str) -> asyncio.Queue[Any]:
        """A bounded queue that receives the callback events naming ``ref``."""
        if len(self._refs) >= MAX_REFS:
            self._refs.pop(next(iter(self._refs)))
        queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_DEPTH)
        self._refs[ref] = queue
        return queue

    def forget(self, ref: str) -> None:
        self._refs.pop(ref, None)
        self._ref_calls.pop(ref, None)

    def bind(self, ref: str, provider: str, call_id: str) -> None:
        """Remember which call a ref's callbacks are about (known once the call exists)."""
        self._ref_calls[ref] = (provider, call_id)

    # --- delivery --------------------------------------------------------------------------

    async def deliver(self, provider: str, call_id: str | None, ref: str | None, event: Any) -> bool:
        """Hand a verified callback's event to whoever waits for it; True if anyone did."""
        delivered = False
        queue = self._refs.get(ref) if ref else None
        if queue is not None:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)
            delivered = True
        for listener in list(self.listeners):
            try:
                listener(event, ref or "")
            except Exception:
                logger.exception("! a call-status listener raised")
        transport = self.get(provider, call_id)
        if transport is not None:
            await _push(transport, event)
            delivered = True
        return delivered


async def _push(transport: Any, event: Any) -> None:
    """Into the call's pipeline (downstream from the input) and to its event handler."""
    name = "on_answering_machine" if isinstance(event, AnsweringMachineFrame) else "on_call_status"
    transport._call_event_handler(name, event)  # the transport passes itself first
    await transport.input().push_frame(event, FrameDirection.DOWNSTREAM)
