"""The calls a process is serving, and the hooks that observe each one's life.

Why one registry: the drain must know which calls are still up (to wait for them, then end
them), metrics and tracing want the same three moments of every call (started, a turn
completed, ended), and later features (recording, a fleet registry) want them too. So
``create_app`` runs every call through ``CallRegistry.begin``/``end`` and anything that cares
is a ``CallHook`` in ``registry.hooks``. A hook that raises is logged and skipped: an
observer's bug never ends a call.

Per call, ``begin`` also sets two context variables that the bot's pipeline tasks inherit:
the call's log fields (``json_logs.CALL_CONTEXT``: every line any phonewire logger writes for
this call carries its call id, provider and stream id) and the TTFB sink
(``processors.metrics.TTFB_SINK``: services' time-to-first-byte, whether or not the bot
enabled MetricsFrames). Nothing here runs per packet or per frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from contextvars import Token
from dataclasses import dataclass, field
from typing import Any, Protocol

from phonewire.processors.metrics import TTFB_SINK
from phonewire.serializers.base import CallInfo
from phonewire.server.json_logs import CALL_CONTEXT
from phonewire.transports.call_state import CloseReason

__all__ = ["ActiveCall", "CallHook", "CallRegistry", "call_outcome"]

logger = logging.getLogger("phonewire.server")

#: Outcome by the transport's close cause (``transport.close_cause``); anything else: completed.
_OUTCOMES = {
    CloseReason.STOP: "caller_hung_up",
    CloseReason.CLIENT_DISCONNECTED: "caller_hung_up",
    CloseReason.RECEIVE_FAILED: "peer_lost",
    CloseReason.SEND_FAILED: "peer_lost",
    CloseReason.SEND_TIMEOUT: "peer_lost",
    CloseReason.NO_MEDIA: "peer_lost",
    CloseReason.MESSAGE_TOO_BIG: "protocol_error",
    CloseReason.MESSAGE_RATE: "protocol_error",
    CloseReason.TRANSFERRED: "transferred",
    CloseReason.PIPELINE_CANCELLED: "cancelled",
}


@dataclass(eq=False)
class ActiveCall:
    transport: Any
    info: CallInfo
    #: ``time.monotonic()`` and ``time.time_ns()`` at the start (spans need wall-clock times).
    started_at: float
    started_ns: int
    task: asyncio.Task[Any] | None
    bot_error: bool = False
    #: Set when the server ended the call itself (the drain deadline): the outcome says so.
    ended_by: str | None = None
    outcome: str | None = None
    #: Per-call state of the hooks (a tracer's span, a recorder's file), by hook.
    data: dict[str, Any] = field(default_factory=dict)
    _tokens: tuple[Token[Any], Token[Any]] | None = None

    def wall_ns(self, monotonic: float) -> int:
        """A ``time.monotonic()`` moment of this call as epoch nanoseconds."""
        return self.started_ns + int((monotonic - self.started_at) * 1e9)


class CallHook(Protocol):
    def call_started(self, call: ActiveCall) -> None: ...

    def turn_completed(self, call: ActiveCall, turn: Any) -> None: ...

    def service_ttfb(self, call: ActiveCall, processor: str, seconds: float, at: float) -> None: ...

    def call_ended(self, call: ActiveCall) -> None: ...


def call_outcome(call: ActiveCall) -> str:
    """One word for how a call ended (a bounded label): ``completed`` (the bot ended it),
    ``caller_hung_up``, ``peer_lost``, ``protocol_error`` (closed for an input limit: 1008/1009),
    ``transferred``, ``drained``, ``cancelled``, ``bot_error``."""
    if call.bot_error:
        return "bot_error"
    if call.ended_by:
        return call.ended_by
    cause = getattr(call.transport, "close_cause", None)
    return _OUTCOMES.get(cause, "completed") if cause is not None else "completed"


class CallRegistry:
    def __init__(self, hooks: list[CallHook] | None = None) -> None:
        self.hooks: list[CallHook] = list(hooks or [])
        self._calls: set[ActiveCall] = set()
        self._empty = asyncio.Event()
        self._empty.set()

    def __len__(self) -> int:
        return len(self._calls)

    def __iter__(self) -> Iterator[ActiveCall]:
        return iter(list(self._calls))

    def begin(self, transport: Any, info: CallInfo) -> ActiveCall:
        """Register a call whose bot is about to run, in the task that runs it."""
        task = asyncio.current_task()
        call = ActiveCall(transport, info, time.monotonic(), time.time_ns(), task)
        self._calls.add(call)
        self._empty.clear()
        fields = {"call_id": info.call_id or "-", "provider": info.provider, "stream_id": info.stream_id or "-"}
        call._tokens = (CALL_CONTEXT.set(fields), TTFB_SINK.set(lambda p, s: self._on_ttfb(call, p, s)))
        transport.stats.turns.listener = lambda turn: self._each("turn_completed", call, turn)
        self._each("call_started", call)
        return call

    def end(self, call: ActiveCall) -> None:
        """The call's bot has returned and its socket is closed: report it and forget it."""
        call.transport.stats.turns.listener = None
        call.outcome = call_outcome(call)
        self._each("call_ended", call)
        self._calls.discard(call)
        if not self._calls:
            self._empty.set()
        if call._tokens is not None:
            with contextlib.suppress(ValueError):  # ended from another context: nothing to undo
                CALL_CONTEXT.reset(call._tokens[0])
                TTFB_SINK.reset(call._tokens[1])
            call._tokens = None

    async def wait_empty(self, timeout: float) -> bool:
        """True once no call is active, False if ``timeout`` passed first."""
        try:
            async with asyncio.timeout(timeout):
                await self._empty.wait()
            return True
        except TimeoutError:
            return False

    def _on_ttfb(self, call: ActiveCall, processor: str, seconds: float) -> None:
        self._each("service_ttfb", call, processor, seconds, time.monotonic())

    def _each(self, method: str, call: ActiveCall, *args: Any) -> None:
        for hook in self.hooks:
            try:
                getattr(hook, method)(call, *args)
            except Exception:
                logger.exception("! call hook %s.%s failed (the call goes on)", type(hook).__name__, method)


class MetricsHook:
    """Feeds ``Metrics`` from the call lifecycle (``server/metrics.py``)."""

    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics

    def call_started(self, call: ActiveCall) -> None:
        self.metrics.call_started(call.info.provider)

    def turn_completed(self, call: ActiveCall, turn: Any) -> None:
        self.metrics.turn_completed(turn.stages)

    def service_ttfb(self, call: ActiveCall, processor: str, seconds: float, at: float) -> None:
        self.metrics.service_ttfb(processor, seconds)

    def call_ended(self, call: ActiveCall) -> None:
        self.metrics.call_ended(call.info.provider, call.outcome or "completed", call.transport.stats)
