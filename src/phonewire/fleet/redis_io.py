"""The one door to Redis: every round trip is bounded by a timeout and counted.

Why: the fleet's promises ("every wait on a peer has a timeout", "Redis round trips per call"
in docs/benchmarks.md) need a single place that enforces and measures them. ``FleetRedis.run``
awaits one command (or one pipeline, or one script) under ``asyncio.timeout`` and bumps
``round_trips``; a timeout or a connection error is raised as ``FleetUnavailable`` so callers
have one exception to map to their documented behaviour (refuse new calls; calls in progress
continue).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from phonewire.exceptions import PhonewireError

__all__ = ["FleetRedis", "FleetUnavailable", "OutageLog"]

logger = logging.getLogger("phonewire.fleet")
T = TypeVar("T")


class FleetUnavailable(PhonewireError):
    """Redis did not answer in time, or not at all."""


class OutageLog:
    """How a background task that keeps meeting Redis down says so: one warning when it starts
    failing, a reminder every ``remind_secs`` while it lasts, one line when it works again.

    Why: the heartbeat and the command channel retry every few seconds for as long as Redis is
    away; a warning per attempt would flood the log (hundreds of lines a minute per node) and
    hide the one line an operator needs - when it broke and when it came back."""

    def __init__(self, what: str, consequence: str, *, remind_secs: float = 60.0) -> None:
        self.what = what
        self.consequence = consequence
        self.remind_secs = remind_secs
        self.failures = 0
        self._since: float | None = None
        self._reminded = 0.0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self.failures += 1
        if self._since is None:
            self._since = self._reminded = now
            logger.warning("! %s failed (%s): %s", self.what, exc, self.consequence)
        elif now - self._reminded >= self.remind_secs:
            self._reminded = now
            logger.warning("! %s still failing after %.0fs (%s): %s", self.what, now - self._since, exc,
                           self.consequence)  # fmt: skip
        else:
            logger.debug("- %s failed again (%s)", self.what, exc)

    def ok(self) -> None:
        if self._since is not None:
            logger.warning("= %s restored after %.1fs", self.what, time.monotonic() - self._since)
            self._since = None


class FleetRedis:
    """An ``redis.asyncio.Redis`` with a bound and a counter on every round trip."""

    def __init__(self, url: str, *, timeout: float, client: Any = None) -> None:
        if client is None:
            import redis.asyncio as aioredis  # the optional extra: phonewire[redis]

            # Socket timeouts as well: a half-open connection must not outlive our own bound.
            client = aioredis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=15
            )
        self.client = client
        self.timeout = timeout
        self.round_trips = 0
        self.failures = 0

    async def run(self, op: Awaitable[T]) -> T:
        """Await one round trip, bounded; Redis errors and timeouts become ``FleetUnavailable``."""
        from redis.exceptions import RedisError

        self.round_trips += 1
        try:
            async with asyncio.timeout(self.timeout):
                return await op
        except (TimeoutError, RedisError, OSError) as exc:
            self.failures += 1
            raise FleetUnavailable(f"redis: {type(exc).__name__}") from None

    async def close(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self.client.aclose()
        except Exception as exc:  # closing a dead connection: nothing left to do
            logger.debug("- redis close: %s", type(exc).__name__)
