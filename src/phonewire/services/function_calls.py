"""Function calling: what a handler receives, and one call's life as an owned task.

Pipecat's handler shape is kept: ``async def handler(params: FunctionCallParams)`` that
calls ``await params.result_callback(result)``. A handler may instead just ``return`` its
result (phonewire's shortcut); the first of the two wins. Every call ends in exactly one
result - the handler's, or an error the LLM can read (timeout, exception, cancellation) -
because an unanswered ``tool_call_id`` makes the next request fail with a 400.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from phonewire.frames import FunctionCallFromLLM, FunctionCallResultProperties

__all__ = [
    "FunctionCallHandler",
    "FunctionCallParams",
    "FunctionCallRegistryItem",
    "RequestedCall",
    "RunningFunctionCall",
]

logger = logging.getLogger("phonewire.services.llm")

ResultCallback = Callable[..., Awaitable[None]]
FunctionCallHandler = Callable[["FunctionCallParams"], Awaitable[Any]]
#: How long cancelling a handler may take before we stop waiting for it (it is still cancelled).
CANCEL_WAIT_SECS = 2.0


@dataclass(slots=True, kw_only=True)
class FunctionCallParams:
    """Given to a handler (Pipecat's names). ``result_callback(result, properties=None)``
    delivers the result; calling it again is ignored."""

    function_name: str
    tool_call_id: str
    arguments: dict[str, Any]
    llm: Any
    context: Any
    result_callback: ResultCallback


@dataclass(slots=True, kw_only=True)
class FunctionCallRegistryItem:
    function_name: str | None
    handler: FunctionCallHandler
    cancel_on_interruption: bool = True
    timeout_secs: float | None = None


@dataclass(slots=True, kw_only=True)
class RequestedCall:
    """A call a reply asked for. ``problem``: why it cannot run (bad arguments), answered as an
    error; ``message_call``: the call exactly as streamed, for the assistant message."""

    call: FunctionCallFromLLM
    problem: str | None = None
    message_call: dict[str, Any] | None = None


Deliver = Callable[["RunningFunctionCall", Any, FunctionCallResultProperties | None], Awaitable[None]]


@dataclass(slots=True, kw_only=True)
class RunningFunctionCall:
    """One call in flight. ``deliver`` pushes the result frame; it runs at most once."""

    function_name: str
    tool_call_id: str
    arguments: dict[str, Any]
    cancel_on_interruption: bool
    timeout_secs: float
    deliver: Deliver
    on_error: Callable[[str, str], None]
    task: asyncio.Task[None] | None = None
    delivered: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def result_callback(self, result: Any, *, properties: FunctionCallResultProperties | None = None) -> None:
        async with self._lock:
            if self.delivered:
                logger.debug("- %s result delivered twice; the second is ignored", self.tool_call_id)
                return
            self.delivered = True
        await self.deliver(self, result, properties)

    async def run(self, handler: FunctionCallHandler, params: FunctionCallParams) -> None:
        """Run the handler under its timeout; any failure becomes an error result."""
        try:
            async with asyncio.timeout(self.timeout_secs):
                returned = await handler(params)
        except TimeoutError:
            self.on_error("function_timeout", f"{self.function_name} timed out after {self.timeout_secs:g}s")
            returned = {"error": f"The function {self.function_name} did not answer within {self.timeout_secs:g} s."}
        except Exception as exc:  # a handler's bug must not end the turn: the LLM hears it failed
            logger.warning("! function %s raised %s", self.function_name, type(exc).__name__, exc_info=exc)
            self.on_error("function_error", f"{self.function_name} raised {type(exc).__name__}")
            returned = {"error": f"The function {self.function_name} failed ({type(exc).__name__})."}
        await self.result_callback(returned)

    async def cancel(self) -> bool:
        """Cancel the handler; True if it had not delivered yet (so a cancelled result is due)."""
        task = self.task
        if task is not None and not task.done():
            task.cancel()
            try:
                async with asyncio.timeout(CANCEL_WAIT_SECS):
                    await asyncio.gather(task, return_exceptions=True)
            except TimeoutError:
                logger.warning("! function %s ignored its cancellation for %ss", self.function_name, CANCEL_WAIT_SECS)
        async with self._lock:
            due, self.delivered = not self.delivered, True
        return due
