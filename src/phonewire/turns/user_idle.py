"""The caller said nothing after the bot finished: one owned timer per call.

Armed when the bot stops speaking outside a user turn, disarmed when the caller (or the bot)
speaks; fires ``on_idle`` once per arming. The user aggregator turns that into the
``on_user_turn_idle`` event and, with ``user_idle_prompt``, an LLM run that asks the caller
whether they are still there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

__all__ = ["UserIdleTimer"]


class UserIdleTimer:
    def __init__(self, timeout: float, on_idle: Callable[[], Awaitable[None]], *, name: str) -> None:
        self.timeout = timeout
        self._on_idle = on_idle
        self._name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def armed(self) -> bool:
        return self._task is not None and not self._task.done()

    def arm(self) -> None:
        self.disarm()
        self._task = asyncio.get_running_loop().create_task(self._wait(), name=f"{self._name}:user-idle")

    def disarm(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _wait(self) -> None:
        await asyncio.sleep(self.timeout)
        await self._on_idle()
