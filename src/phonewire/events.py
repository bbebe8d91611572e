"""Named event handlers, registered with a decorator, run so they cannot stall audio.

Handlers are called as ``handler(owner, *args)`` and may be sync or async. Each call runs in
its own task, owned by the emitter: a handler that sleeps or does slow I/O delays nothing
else, and ``cleanup_event_handlers`` awaits (then cancels) what is still running. Unknown
event names raise at registration: a typo must not silently disable a hang-up handler.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["EventEmitter"]

logger = logging.getLogger("phonewire.events")

Handler = Callable[..., Awaitable[None] | None]
H = TypeVar("H", bound=Handler)


class EventEmitter:
    def __init__(self) -> None:
        self._event_handlers: dict[str, list[Handler]] = {}
        self._handler_tasks: set[asyncio.Task[None]] = set()

    def _register_event_handler(self, event_name: str) -> None:
        self._event_handlers.setdefault(event_name, [])

    @property
    def event_names(self) -> list[str]:
        return list(self._event_handlers)

    def add_event_handler(self, event_name: str, handler: Handler) -> None:
        if event_name not in self._event_handlers:
            known = ", ".join(sorted(self._event_handlers)) or "none"
            raise ValueError(f"{type(self).__name__} has no event {event_name!r} (known: {known})")
        self._event_handlers[event_name].append(handler)

    def event_handler(self, event_name: str) -> Callable[[H], H]:
        """Decorator: ``@transport.event_handler("on_client_connected")``."""

        def decorator(handler: H) -> H:
            self.add_event_handler(event_name, handler)
            return handler

        return decorator

    def has_event_handlers(self, event_name: str) -> bool:
        return bool(self._event_handlers.get(event_name))

    def _call_event_handler(self, event_name: str, *args: Any) -> None:
        """Start every handler of ``event_name`` in its own task and return at once."""
        for handler in self._event_handlers.get(event_name, ()):
            task = asyncio.get_running_loop().create_task(
                self._run_handler(event_name, handler, args), name=f"{event_name}:{handler!r}"
            )
            self._handler_tasks.add(task)
            task.add_done_callback(self._handler_tasks.discard)

    async def _run_handler(self, event_name: str, handler: Handler, args: tuple[Any, ...]) -> None:
        try:
            result = handler(self, *args)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("! event handler for %s raised", event_name)

    async def cleanup_event_handlers(self, timeout: float = 5.0) -> None:
        """Wait for running handlers up to ``timeout`` seconds, then cancel the rest."""
        current = asyncio.current_task()
        pending = {t for t in self._handler_tasks if t is not current}
        if not pending:
            return
        _, still = await asyncio.wait(pending, timeout=timeout)
        for task in still:
            task.cancel()
        if still:
            logger.warning("- %d event handler(s) still running after %.1fs: cancelled", len(still), timeout)
            await asyncio.wait(still, timeout=1.0)
