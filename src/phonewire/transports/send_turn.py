"""One sender at a time, in arrival order: the transport's send turn.

What an ``asyncio.Lock`` does, with the uncontended case left to the caller inline (the lock's
five method calls were a tenth of the per-packet send path)::

    if turn.busy or turn.waiters:
        await turn.wait()
    turn.busy = True
    try:
        ...  # send
    finally:
        turn.busy = False
        if turn.waiters:
            turn.wake_next()

A waiter that is cancelled passes its turn on, so it never blocks the senders behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

__all__ = ["SendTurn"]


class SendTurn:
    __slots__ = ("busy", "waiters")

    def __init__(self) -> None:
        #: A sender holds the turn.
        self.busy = False
        #: Senders queued for the turn, oldest first.
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def wait(self) -> None:
        """Queue behind the current sender (FIFO); on return the turn is free for the caller,
        who takes it (``busy = True``) before its next await."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            while True:
                try:
                    await waiter
                except asyncio.CancelledError:
                    if not self.busy:
                        self.wake_next(skip=waiter)
                    raise
                if not self.busy:
                    return
                # Woken, but a sender got in first (only possible if the waker was cancelled):
                # back to the front, with a fresh future (the spent one leaves the queue).
                with contextlib.suppress(ValueError):
                    self.waiters.remove(waiter)
                waiter = asyncio.get_running_loop().create_future()
                self.waiters.appendleft(waiter)
        finally:
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)

    def wake_next(self, skip: asyncio.Future[None] | None = None) -> None:
        """Hand the (released) turn to the oldest waiter still waiting."""
        for waiter in self.waiters:
            if waiter is not skip and not waiter.done():
                waiter.set_result(None)
                return
