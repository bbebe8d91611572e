"""One task per call bounds every send and notices a silent peer.

A timeout per message would cost a timer per packet; instead the send path and the receive
loop note what they are doing here (plain attribute writes, per packet) and the watchdog
wakes every ``min(send_timeout, quiet_timeout) / 2`` seconds to cancel a send stuck past
``send_timeout`` and a receive silent past ``quiet_timeout``. The cancelled task asks
``claim_send_timeout`` / ``claim_receive_timeout`` whether the cancel was the watchdog's
(then it handles it: the peer is gone) or anybody else's (then it propagates). Time comes
from the injected ``clock`` and ``sleep``; ``check(now)`` is one wake-up, for tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["Watchdog"]


class Watchdog:
    __slots__ = (
        "receive_expired",
        "send_expired",
        "clock",
        "last_receive",
        "quiet_timeout",
        "receiver",
        "send_started",
        "send_timeout",
        "sender",
        "sleep",
    )

    def __init__(
        self,
        clock: Callable[[], float],
        sleep: Callable[[float], Coroutine[Any, Any, None]],
        send_timeout: float = 2.0,
        quiet_timeout: float | None = None,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.send_timeout = send_timeout
        #: Seconds without a message after which the receive is cancelled (None: never).
        self.quiet_timeout = quiet_timeout
        #: Written by the send path: the task sending and since when (None: no send in flight).
        self.sender: asyncio.Task[Any] | None = None
        self.send_started: float | None = None
        #: Written by the receive loop: its task, and when the last message arrived.
        self.receiver: asyncio.Task[Any] | None = None
        self.last_receive = 0.0
        #: Set when this watchdog cancelled the sender / the receiver.
        self.send_expired = False
        self.receive_expired = False

    @property
    def period(self) -> float:
        quiet = self.quiet_timeout
        return min(self.send_timeout, quiet or self.send_timeout) / 2

    def begin_send(self, task: asyncio.Task[Any] | None) -> None:
        """A send starts on ``task`` (the send path inlines this: it runs per packet)."""
        self.sender, self.send_started, self.send_expired = task, self.clock(), False

    def watch_receive(self, task: asyncio.Task[Any] | None) -> None:
        """``task`` reads the socket from now on."""
        self.receiver, self.receive_expired = task, False

    def reset(self) -> None:
        """A new socket: no verdict of the old one's carries over."""
        self.send_expired = self.receive_expired = False

    def check(self, now: float) -> None:
        """One wake-up: cancel what is overdue."""
        since, sender = self.send_started, self.sender
        if since is not None and sender is not None and now - since > self.send_timeout:
            self.send_expired = True
            sender.cancel()
        quiet, receiver = self.quiet_timeout, self.receiver
        if quiet is not None and receiver is not None and now - self.last_receive > quiet:
            self.receive_expired = True
            receiver.cancel()

    def claim_send_timeout(self, task: asyncio.Task[Any] | None) -> bool:
        """Called on a send's CancelledError: True if this watchdog cancelled it (the cancel is
        then consumed: ``task.uncancel()``), False if the cancel must propagate."""
        return self.send_expired and task is not None and not task.uncancel()

    def claim_receive_timeout(self, task: asyncio.Task[Any] | None) -> bool:
        """As ``claim_send_timeout``, for the receive loop."""
        return self.receive_expired and task is not None and not task.uncancel()

    async def run(self, alive: Callable[[], bool], on_tick: Callable[[float], None] | None = None) -> None:
        """Wake every ``period`` while ``alive()``; ``on_tick(now)`` after each check."""
        period = self.period
        while alive():
            await self.sleep(period)
            now = self.clock()
            self.check(now)
            if on_tick is not None:
                on_tick(now)
