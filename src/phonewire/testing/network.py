"""Network impairments on the caller -> bot direction.

A WebSocket rides on TCP, so on a real path a late message holds back the ones behind it:
jitter shows up as bursts, not as overtaking. ``Uplink`` models that (delays never reorder),
and adds the two things TCP hides but a provider's media relay can still produce: dropped
media messages (``loss``) and swapped neighbours (``reorder``; Telnyx documents that media
may arrive out of order). A stall holds everything for a while, as a congested or
re-routing path does; a disconnect (handled by the simulator) cuts the socket abruptly.

Only media is impaired unless ``impair_control`` is set: start/stop/dtmf/mark echoes are
what a bot's state depends on, and a test that loses them by accident tests nothing.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from phonewire.exceptions import ConfigurationError
from phonewire.testing.providers.base import Message

__all__ = ["NetworkConditions", "NetworkStats", "Uplink"]


@dataclass(frozen=True, slots=True)
class NetworkConditions:
    """Impairments applied to messages from the simulated provider to the bot.

    Args:
        jitter_ms: each impaired message is delayed by a uniform 0..jitter_ms (order kept).
        loss: probability that a media message is dropped.
        reorder: probability that a message is held back and sent after the next one.
        stall_at_s, stall_ms: at ``stall_at_s`` into the call, nothing is delivered for
            ``stall_ms``; then everything held is delivered at once.
        disconnect_at_s: the socket is closed abruptly (no close frame) at this time.
        reconnect_after_s: with ``disconnect_at_s``, the caller does not hang up at the drop:
            it reconnects this long after it (a new socket, the provider's opening messages
            again - same call id, same token), as raw-PCM clients and Vonage do, and the call
            goes on. The caller's audio meanwhile is lost; the handset stops playing at the
            drop and forgets marks it had not echoed. None: the drop ends the call.
        seed: seeds the random draws, so a run can be reproduced exactly.
        impair_control: apply jitter/loss/reorder to control messages too.
    """

    jitter_ms: float = 0.0
    loss: float = 0.0
    reorder: float = 0.0
    stall_at_s: float | None = None
    stall_ms: float = 0.0
    disconnect_at_s: float | None = None
    reconnect_after_s: float | None = None
    seed: int = 0
    impair_control: bool = False

    def __post_init__(self) -> None:
        for name in ("loss", "reorder"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigurationError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        for name in ("jitter_ms", "stall_ms"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"{name} must not be negative")
        if self.stall_ms and self.stall_at_s is None:
            raise ConfigurationError("stall_ms needs stall_at_s")
        if self.reconnect_after_s is not None and (self.disconnect_at_s is None or self.reconnect_after_s < 0):
            raise ConfigurationError("reconnect_after_s needs disconnect_at_s and must not be negative")

    def stall_window(self) -> tuple[float, float] | None:
        if self.stall_at_s is None or not self.stall_ms:
            return None
        return self.stall_at_s, self.stall_at_s + self.stall_ms / 1000.0


@dataclass(slots=True)
class NetworkStats:
    media_dropped: int = 0
    control_dropped: int = 0
    messages_reordered: int = 0
    messages_stalled: int = 0
    max_delay_ms: float = 0.0


class Uplink:
    """Delivers messages to ``send`` with ``conditions`` applied, from its own task (``run``).

    ``submit`` never blocks: the real-time send loop must not wait on the network. ``now``
    returns seconds since the call's time zero.
    """

    def __init__(
        self,
        conditions: NetworkConditions,
        send: Callable[[Message], Awaitable[None]],
        now: Callable[[], float],
    ) -> None:
        self.conditions = conditions
        self.stats = NetworkStats()
        self._send = send
        self._now = now
        self._rng = random.Random(conditions.seed)
        self._queue: deque[tuple[float, Message]] = deque()
        self._held: Message | None = None
        self._last_due = 0.0
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    def submit(self, message: Message, *, media: bool) -> None:
        """Queue ``message``; media may be dropped, delayed or swapped with its successor."""
        if self._closed:
            return
        impaired = media or self.conditions.impair_control
        if impaired and self.conditions.loss and self._rng.random() < self.conditions.loss:
            if media:
                self.stats.media_dropped += 1
            else:
                self.stats.control_dropped += 1
            return
        due = self._due_time(impaired)
        if impaired and self._held is None and self._rng.random() < self.conditions.reorder:
            self._held = message
            self.stats.messages_reordered += 1
            return
        self._enqueue(due, message)
        if self._held is not None:
            held, self._held = self._held, None
            self._enqueue(due, held)

    def _due_time(self, impaired: bool) -> float:
        now = self._now()
        delay = self._rng.uniform(0.0, self.conditions.jitter_ms / 1000.0) if impaired else 0.0
        due = max(now + delay, self._last_due)
        window = self.conditions.stall_window()
        if window and window[0] <= due < window[1]:
            due = window[1]
            self.stats.messages_stalled += 1
        self.stats.max_delay_ms = max(self.stats.max_delay_ms, (due - now) * 1000.0)
        self._last_due = due
        return due

    def _enqueue(self, due: float, message: Message) -> None:
        self._queue.append((due, message))
        self._idle.clear()
        self._wakeup.set()

    def release_held(self) -> None:
        """Send a message held back for reordering now (the call is ending)."""
        if self._held is not None:
            held, self._held = self._held, None
            self._enqueue(self._last_due, held)

    async def drain(self) -> None:
        """Wait until everything submitted has been sent (or the link is gone). Wrap in a timeout."""
        self.release_held()
        await self._idle.wait()

    async def run(self) -> None:
        """Deliver queued messages when due, until cancelled or ``send`` fails (socket closed)."""
        try:
            await self._deliver()
        finally:
            self._closed = True
            self._queue.clear()  # nothing will send them now: let drain() return
            self._idle.set()

    async def _deliver(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            due, message = self._queue[0]
            wait = due - self._now()
            if wait > 0:
                await asyncio.sleep(wait)
            self._queue.popleft()
            await self._send(message)
