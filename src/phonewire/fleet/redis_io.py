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
from collections.abc import Awaitable
from typing import Any, TypeVar

from phonewire.exceptions import PhonewireError

__all__ = ["FleetRedis", "FleetUnavailable"]

logger = logging.getLogger("phonewire.fleet")
T = TypeVar("T")


class FleetUnavailable(PhonewireError):
    """Redis did not answer in time, or not at all."""


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
