"""Redis-backed single-use stores: stream tokens and signed webhook requests, fleet-wide.

Why: a stream token minted on node A must be spent once across the fleet, wherever the
provider's stream lands (nginx sends it to any node), and a replayed signed webhook must get
the same token back on every node. Both stores are one atomic Redis command each:

* ``RedisReplayStore.aclaim``: ``SET key 1 NX PX ttl`` - True only for the first claim;
* ``RedisSignedRequestStore.aremember``: ``SET key value NX GET PX ttl`` (Redis >= 7.0) -
  stores the first answer and returns whatever is stored.

They fail closed: if Redis cannot answer within its bound, ``FleetUnavailable`` propagates and
the server refuses the stream (1008) or answers the webhook 503. The synchronous ``claim`` and
``remember`` exist only for the protocols' sake and raise: a blocking round trip has no place
on the event loop, and the server always awaits.
"""

from __future__ import annotations

import time

from phonewire.fleet.redis_io import FleetRedis

__all__ = ["RedisReplayStore", "RedisSignedRequestStore"]


def _ttl_ms(expires_at: float) -> int:
    return max(1, int((expires_at - time.time()) * 1000))


def _sync_refused(name: str) -> RuntimeError:
    return RuntimeError(f"{name}: a Redis store is awaited (aclaim/aremember); the server never calls this")


class RedisReplayStore:
    """``AsyncReplayStore`` on Redis: the stream token's single use, fleet-wide."""

    def __init__(self, redis: FleetRedis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"RedisReplayStore(prefix={self.prefix!r})"

    async def aclaim(self, key: str, expires_at: float) -> bool:
        ok = await self.redis.run(self.redis.client.set(self.prefix + key, b"1", nx=True, px=_ttl_ms(expires_at)))
        return bool(ok)

    def claim(self, key: str, expires_at: float) -> bool:
        raise _sync_refused("RedisReplayStore.claim")


class RedisSignedRequestStore:
    """``AsyncSignedRequestStore`` on Redis: a replayed signed webhook gets the stored token."""

    def __init__(self, redis: FleetRedis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix + "webhook:"

    def __repr__(self) -> str:  # never the values: they are tokens
        return f"RedisSignedRequestStore(prefix={self.prefix!r})"

    async def aremember(self, key: str, value: str, expires_at: float) -> str:
        if expires_at <= time.time():
            return value  # outside its window already: nothing to remember
        client = self.redis.client
        held = await self.redis.run(client.set(self.prefix + key, value, nx=True, get=True, px=_ttl_ms(expires_at)))
        if held is None:
            return value
        return held.decode() if isinstance(held, bytes) else str(held)

    def remember(self, key: str, value: str, expires_at: float) -> str:
        raise _sync_refused("RedisSignedRequestStore.remember")
