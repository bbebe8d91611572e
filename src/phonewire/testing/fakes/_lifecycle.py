"""What every threaded fake server shares: ``with fake:`` and ``async with fake:`` around its
``start()``/``stop()``, and (``WaitableFake``) ``wait_for(predicate)`` on a condition the fake
notifies with every record.

Each fake runs on its own thread and event loop; ``start()`` waits on a ``threading.Event``, so
the async forms run ``start``/``stop`` off the caller's loop (which keeps running meanwhile).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, ClassVar, Self

__all__ = ["FakeLifecycle", "OpenAIRoot", "WaitableFake"]


class FakeLifecycle:
    """Context managers (sync and async) around ``start()`` and ``stop()``, which the fake
    itself defines (declared here for the type checker)."""

    start: Callable[[], None]
    stop: Callable[[], None]

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)  # start() waits on a threading.Event: off the caller's loop
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)


class WaitableFake(FakeLifecycle):
    """``wait_for(predicate)``: block until ``predicate(fake)`` is true, woken by ``_notify()``
    (the fake calls it after every record). Subclasses set ``_cond``; predicates run under it."""

    #: ``wait_for``'s default timeout, in seconds.
    wait_timeout_s: ClassVar[float] = 5.0
    _cond: threading.Condition

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float | None = None) -> None:
        """Block until ``predicate(fake)`` is true (woken by every recorded event)."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), self.wait_timeout_s if timeout is None else timeout):
                raise TimeoutError(f"{type(self).__name__}.wait_for: condition not met")

    async def wait_for_async(self, predicate: Callable[[Any], bool], timeout: float | None = None) -> None:
        """``wait_for`` without blocking the caller's loop."""
        await asyncio.to_thread(self.wait_for, predicate, timeout)

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()


class OpenAIRoot:
    """The port and ``base_url`` of a fake of OpenAI's API (HTTP or Realtime): set ``_port`` while
    it serves; ``base_url`` is ``http://127.0.0.1:PORT/v1``, what the SDK takes."""

    _port: int | None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: the SDK's ``base_url``."""
        return f"http://127.0.0.1:{self.port}/v1"
