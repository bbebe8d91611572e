"""Prewarm: open what a call needs (a Realtime session) while the phone still rings.

Why: a speech-to-speech session takes a TCP + TLS + WebSocket handshake and a
``session.update`` round trip before the model can say a word. The provider's webhook arrives
a second or more before the media stream connects, so ``ServerConfig.prewarm`` is started
right after the webhook is *verified*, keyed by the verified call id, and its result is handed
to that call's bot (``prewarmed()`` inside the bot). The registry is bounded (``max_entries``;
beyond it nothing is prewarmed) and every entry lives at most ``ttl_secs``: a call that never
streams has its session closed (``aclose()``/``close()`` on the result) when the TTL runs out.

A stream only gets the entry of its own call id, and only once it passed the stream-token
check when tokens are required, so a forged start cannot take somebody else's session.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["PrewarmCall", "PrewarmRegistry", "prewarmed"]

logger = logging.getLogger("phonewire.server.prewarm")
_current: contextvars.ContextVar[asyncio.Task[Any] | None] = contextvars.ContextVar("phonewire_prewarmed", default=None)


@dataclass(frozen=True, slots=True)
class PrewarmCall:
    """What the verified webhook said about the call (every field covered by its signature)."""

    provider: str
    call_id: str
    from_number: str | None = None
    to_number: str | None = None


Prewarm = Callable[[PrewarmCall], Awaitable[Any]]


class PrewarmRegistry:
    def __init__(self, prewarm: Prewarm, *, ttl_secs: float = 30.0, max_entries: int = 100) -> None:
        self.prewarm = prewarm
        self.ttl_secs = ttl_secs
        self.max_entries = max_entries
        self._entries: dict[str, tuple[asyncio.Task[Any], asyncio.TimerHandle]] = {}
        self.started = self.taken = self.expired = self.refused = 0

    def __len__(self) -> int:
        return len(self._entries)

    def start(self, call: PrewarmCall) -> bool:
        """Begin prewarming ``call`` (a replayed webhook for a known call id changes nothing)."""
        if call.call_id in self._entries:
            return True
        if len(self._entries) >= self.max_entries:
            self.refused += 1
            logger.warning("! prewarm refused for %s: %d already pending (max_entries)", call.call_id, len(self))
            return False
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._run(call), name=f"prewarm:{call.call_id}")
        timer = loop.call_later(self.ttl_secs, self._expire, call.call_id)
        self._entries[call.call_id] = (task, timer)
        self.started += 1
        return True

    async def _run(self, call: PrewarmCall) -> Any:
        started = time.monotonic()
        result = await self.prewarm(call)
        logger.debug("- prewarmed %s in %.0f ms", call.call_id, (time.monotonic() - started) * 1000)
        return result

    def take(self, call_id: str | None) -> asyncio.Task[Any] | None:
        """The call's prewarm (a task; await it for the result), handed over once."""
        entry = self._entries.pop(call_id or "", None)
        if entry is None:
            return None
        entry[1].cancel()
        self.taken += 1
        return entry[0]

    def _expire(self, call_id: str) -> None:
        entry = self._entries.pop(call_id, None)
        if entry is None:
            return
        self.expired += 1
        logger.info("- prewarm for %s unused after %.0f s: closed", call_id, self.ttl_secs)
        asyncio.get_running_loop().create_task(discard(entry[0]), name=f"prewarm-close:{call_id}")

    async def close(self) -> None:
        entries, self._entries = list(self._entries.values()), {}
        for task, timer in entries:
            timer.cancel()
            await discard(task)


async def discard(task: asyncio.Task[Any]) -> None:
    """Cancel or close what a prewarm produced (bounded: a slow close is abandoned)."""
    if not task.done():
        task.cancel()
    results = await asyncio.gather(task, return_exceptions=True)
    result = results[0]
    if isinstance(result, BaseException):
        return
    closer = getattr(result, "aclose", None) or getattr(result, "close", None)
    if closer is None:
        return
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2.0):
            outcome = closer()
            if inspect.isawaitable(outcome):
                await outcome


def handing(task: asyncio.Task[Any] | None) -> contextvars.Token[asyncio.Task[Any] | None]:
    """Make ``task`` what ``prewarmed()`` returns in this call's bot (set by ``create_app``)."""
    return _current.set(task)


def prewarmed() -> asyncio.Task[Any] | None:
    """Inside a bot: the awaitable result of ``ServerConfig.prewarm`` for this call, or None
    (no hook, the webhook never came, the TTL ran out, or the stream was not verified)."""
    return _current.get()
