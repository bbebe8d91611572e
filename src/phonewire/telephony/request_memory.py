"""Memory of signed webhook requests already answered, so a replay gets the same token back.

Why: Twilio and Plivo signatures carry no timestamp, and a Telnyx or Vonage signature stays
valid for its freshness window. Without memory, every replay of a captured signed request
would mint a *fresh* stream token for the call. With it, minting is idempotent per signed
request: a provider's genuine retry gets the token it was already given (so the call still
works), and an attacker's replay gets a token that is single-use and already spent, or about to
be spent by the real stream.

``SignedRequestStore`` is the interface (``remember``, atomic "set if absent, return what is
stored"); ``InMemorySignedRequestStore`` is the bounded per-process default. A shared store
(``phonewire.fleet.RedisSignedRequestStore``: ``SET key value NX GET`` with a TTL) plugs in
through ``ServerConfig`` (``webhook_request_store``, or ``fleet``) for several processes.
Nothing here logs; stored values are stream tokens, so never log them either.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from typing import Protocol

from phonewire.exceptions import ConfigurationError

__all__ = [
    "DEFAULT_MAX_REMEMBERED",
    "UNTIMED_MEMORY_S",
    "AsyncSignedRequestStore",
    "InMemorySignedRequestStore",
    "SignedRequestStore",
    "remember_async",
]

UNTIMED_MEMORY_S = 3600.0
"""How long a request whose signature has no timestamp (Twilio, Plivo) is remembered. A replay
within the hour gets the original, long-expired (120 s) token; the window is bounded only so
memory is. Telnyx and Vonage requests are remembered for exactly their freshness window."""

DEFAULT_MAX_REMEMBERED = 50_000
"""About 20 MiB at most (key, token and overhead < 400 bytes each), and over 13 calls a second
sustained for the hour before an untimed entry could be evicted early."""


class SignedRequestStore(Protocol):
    """Remembers the answer (a stream token) given to each signed request.

    ``remember`` must be atomic: the first call for ``key`` stores ``value`` and returns it;
    later calls before ``expires_at`` (Unix seconds) return the stored value and store nothing.
    After ``expires_at`` the key may be forgotten.
    """

    def remember(self, key: str, value: str, expires_at: float) -> str: ...


class AsyncSignedRequestStore(Protocol):
    """A ``SignedRequestStore`` shared over the network (``phonewire.fleet.RedisSignedRequestStore``:
    ``SET key value NX GET`` with an expiry); ``aremember`` has ``remember``'s contract and is
    what the webhooks await, so no event loop blocks on a round trip."""

    def remember(self, key: str, value: str, expires_at: float) -> str: ...

    async def aremember(self, key: str, value: str, expires_at: float) -> str: ...


async def remember_async(store: SignedRequestStore, key: str, value: str, expires_at: float) -> str:
    """``store.aremember`` when the store has it, else ``store.remember``. What a shared store
    raises (its server down, a timeout) propagates: the webhook then refuses (fail closed)."""
    aremember = getattr(store, "aremember", None)
    if aremember is not None:
        return str(await aremember(key, value, expires_at))
    return store.remember(key, value, expires_at)


class InMemorySignedRequestStore:
    """A bounded, per-process ``SignedRequestStore``.

    Expired entries are purged on every call; when ``max_entries`` are held the one closest to
    expiry is dropped, so memory stays bounded under a flood of distinct signed requests (which
    only the provider can produce). A dropped entry means a later replay of that request mints
    a fresh token again: the residual risk docs/security.md describes.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_REMEMBERED, *, clock: Callable[[], float] = time.time) -> None:
        if max_entries < 1:
            raise ConfigurationError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        self._values: dict[str, tuple[float, str]] = {}
        self._heap: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:  # never the values: they are tokens
        return f"InMemorySignedRequestStore(max_entries={self._max_entries}, entries={len(self)})"

    def remember(self, key: str, value: str, expires_at: float) -> str:
        with self._lock:
            now = self._clock()
            self._purge(now)
            held = self._values.get(key)
            if held is not None:
                return held[1]
            if expires_at <= now:
                return value  # nothing to remember: the request is already outside its window
            while len(self._values) >= self._max_entries:
                self._drop_oldest()
            self._values[key] = (expires_at, value)
            heapq.heappush(self._heap, (expires_at, key))
            return value

    def _drop_oldest(self) -> None:
        expires_at, key = heapq.heappop(self._heap)
        held = self._values.get(key)
        if held is not None and held[0] == expires_at:
            del self._values[key]

    def _purge(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            self._drop_oldest()
