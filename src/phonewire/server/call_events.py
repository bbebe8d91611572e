"""What the softphone and the call console show: each call's state, turns and transcript, pushed.

Why a module of its own: ``CallRegistry`` (``server/lifecycle.py``) tells its hooks when a call
starts, completes a turn and ends; ``live_calls.py`` maps verified call ids to transports for
call control. Neither keeps what a person watching wants - who is speaking, what each side
said, every turn's latency stages - nor ended calls. ``CallEvents`` is a ``CallHook`` that keeps
exactly that, bounded (``MAX_TURNS``/``MAX_LINES`` per call, ``MAX_ENDED`` ended calls), and
pushes each change to subscribers (the pages' SSE streams), each with a bounded queue: a
subscriber that falls ``QUEUE_DEPTH`` events behind is dropped (its browser reconnects and gets
a fresh snapshot), so a slow page never holds memory or blocks a call.

Transcripts come from the bot's ``LLMContextAggregatorPair``: while a call's bot runs, the
context variable ``llm_response_universal.TURN_OBSERVER`` (set here at ``call_started``, in the
call's task, and inherited by the bot's pipeline) subscribes every pair the bot builds to its
turn events (``on_user_turn_started/stopped``, ``on_assistant_turn_started/stopped``). Nothing
here runs per packet or per frame: only per turn and per state change.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from phonewire.processors.aggregators.llm_response_universal import TURN_OBSERVER

__all__ = ["CallEvents", "CallView", "Subscription"]

logger = logging.getLogger("phonewire.server")

#: Turns and transcript lines kept per call (a long call keeps its latest).
MAX_TURNS = 200
MAX_LINES = 200
#: Ended calls kept for the console.
MAX_ENDED = 50
#: Events a subscriber may fall behind before it is dropped.
QUEUE_DEPTH = 256
#: Subscribers at once (pages open); more are refused.
MAX_SUBSCRIBERS = 64
#: Longest transcript line kept (characters).
MAX_TEXT = 2000


@dataclass(eq=False)
class CallView:
    """One call as the pages see it."""

    id: str
    provider: str
    call_id: str | None
    caller: str | None
    callee: str | None
    started_wall: float
    started_mono: float
    transport: Any = None
    speaking: str | None = None
    turns: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_TURNS))
    transcript: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_LINES))
    turn_count: int = 0
    dtmf: int = 0
    outcome: str | None = None
    ended_wall: float | None = None
    duration: float | None = None

    def summary(self) -> dict[str, Any]:
        last = self.turns[-1] if self.turns else None
        return {
            "id": self.id,
            "provider": self.provider,
            "call_id": self.call_id,
            "caller": self.caller,
            "callee": self.callee,
            "started": self.started_wall,
            "duration": self.duration,
            "live": self.outcome is None,
            "speaking": self.speaking,
            "turns": self.turn_count,
            "last_latency_ms": last["response_ms"] if last else None,
            "dtmf": self.dtmf,
            "outcome": self.outcome,
        }

    def detail(self) -> dict[str, Any]:
        return {**self.summary(), "turn_list": list(self.turns), "transcript": list(self.transcript)}


def _turn(record: Any) -> dict[str, Any]:
    stages = {name: round(1000 * secs, 1) for name, secs in dict(record.stages).items()}
    heard = stages.get("first_audio_heard")
    return {
        "index": record.index,
        "stages": stages,
        "response_ms": heard if heard is not None else stages.get("first_audio_sent"),
        "heard_by": record.heard_source,
        "interrupted": bool(getattr(record, "interrupted", False)),
    }


class Subscription:
    """One page's stream of events (bounded); ``closed`` once dropped or ended."""

    def __init__(self, owner: CallEvents, match: Callable[[CallView], bool] | None) -> None:
        self.owner = owner
        self.match = match
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_DEPTH)
        self.closed = False

    def offer(self, view: CallView | None, event: dict[str, Any]) -> None:
        if self.closed or (self.match is not None and (view is None or not self.match(view))):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:  # too slow: drop it; its page reconnects and resyncs
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.owner._subscribers.discard(self)
        while True:  # make room for the end marker
            try:
                self.queue.get_nowait()
            except asyncio.QueueEmpty:
                break
        self.queue.put_nowait(None)

    async def events(
        self, keepalive_secs: float, stop: Callable[[], bool] = lambda: False
    ) -> AsyncIterator[dict[str, Any] | None]:
        """Events as they come; None after ``keepalive_secs`` of quiet (send a comment). Ends
        when closed or once ``stop()`` is true (checked each second: a draining server)."""
        quiet = 0.0
        while not self.closed or not self.queue.empty():
            if stop():
                return
            try:
                event = await asyncio.wait_for(self.queue.get(), 1.0)
            except TimeoutError:
                quiet += 1.0
                if quiet >= keepalive_secs:
                    quiet = 0.0
                    yield None
                continue
            quiet = 0.0
            if event is None:
                return
            yield event


class CallEvents:
    """A ``CallHook`` keeping live and recent calls for the pages, and pushing their changes."""

    def __init__(self, *, max_ended: int = MAX_ENDED) -> None:
        self.live: dict[str, CallView] = {}
        self.ended: deque[CallView] = deque(maxlen=max_ended)
        self._subscribers: set[Subscription] = set()
        self._ids = itertools.count(1)
        self._tokens: dict[str, contextvars.Token[Any]] = {}

    # --- queries --------------------------------------------------------------------------

    def find(self, view_id: str) -> CallView | None:
        return self.live.get(view_id) or next((v for v in self.ended if v.id == view_id), None)

    def snapshot(self, match: Callable[[CallView], bool] | None = None, *, detail: bool = True) -> dict[str, Any]:
        now = time.monotonic()
        views = [v for v in self.live.values() if match is None or match(v)]
        for view in views:
            view.duration = round(now - view.started_mono, 1)
        ended = [v for v in self.ended if match is None or match(v)]
        shape = (lambda v: v.detail()) if detail else (lambda v: v.summary())
        return {"type": "snapshot", "live": [shape(v) for v in views], "ended": [shape(v) for v in reversed(ended)]}

    def subscribe(self, match: Callable[[CallView], bool] | None = None) -> Subscription | None:
        """A new bounded subscription, or None when ``MAX_SUBSCRIBERS`` are open."""
        if len(self._subscribers) >= MAX_SUBSCRIBERS:
            return None
        sub = Subscription(self, match)
        self._subscribers.add(sub)
        return sub

    # --- CallHook ---------------------------------------------------------------------------

    def call_started(self, call: Any) -> None:
        info = call.info
        view = CallView(
            id=f"c{next(self._ids)}",
            provider=info.provider,
            call_id=info.call_id,
            caller=getattr(info, "from_number", None),
            callee=getattr(info, "to_number", None),
            started_wall=time.time(),
            started_mono=time.monotonic(),
            transport=call.transport,
        )
        call.data[self] = view
        self.live[view.id] = view
        # In the call's task, before its bot runs: the bot's aggregator pairs report to ``view``.
        self._tokens[view.id] = TURN_OBSERVER.set(lambda pair: self._observe(view, pair))
        self._publish(view, "call")

    def turn_completed(self, call: Any, turn: Any) -> None:
        view = call.data.get(self)
        if view is None:
            return
        view.turn_count += 1
        entry = _turn(turn)
        view.turns.append(entry)
        self._refresh(view)
        self._publish(view, "turn", turn=entry)

    def service_ttfb(self, call: Any, processor: str, seconds: float, at: float) -> None:
        """Not shown (the turn's stages already hold each service's first byte)."""

    def call_ended(self, call: Any) -> None:
        view = call.data.pop(self, None)
        if view is None:
            return
        token = self._tokens.pop(view.id, None)
        if token is not None:
            try:
                TURN_OBSERVER.reset(token)
            except ValueError:  # ended from another context: nothing to undo there
                pass
        self._refresh(view)
        view.outcome = call.outcome or "completed"
        view.speaking = None
        view.ended_wall = time.time()
        view.duration = round(time.monotonic() - view.started_mono, 1)
        view.transport = None
        self.live.pop(view.id, None)
        self.ended.append(view)
        self._publish(view, "ended")

    # --- from the bot's aggregators -----------------------------------------------------------

    def said(self, view: CallView, who: str, text: str | None, **extra: Any) -> None:
        if not text or view.outcome is not None:
            return
        line = {"who": who, "text": text[:MAX_TEXT], "at": round(time.monotonic() - view.started_mono, 2), **extra}
        view.transcript.append(line)
        self._publish(view, "transcript", line=line)

    def speaking(self, view: CallView, who: str | None) -> None:
        if view.speaking == who or view.outcome is not None:
            return
        view.speaking = who
        self._refresh(view)
        self._publish(view, "call")

    def _observe(self, view: CallView, pair: Any) -> None:
        user, assistant = pair.user(), pair.assistant()
        user.add_event_handler("on_user_turn_started", lambda _agg: self.speaking(view, "caller"))
        user.add_event_handler("on_user_turn_stopped", lambda _agg, msg: self._user_said(view, msg))
        assistant.add_event_handler("on_assistant_turn_started", lambda _agg: self.speaking(view, "bot"))
        assistant.add_event_handler("on_assistant_turn_stopped", lambda _agg, msg: self._bot_said(view, msg))

    def _user_said(self, view: CallView, msg: Any) -> None:
        if view.speaking == "caller":
            self.speaking(view, None)
        self.said(view, "caller", getattr(msg, "content", None))

    def _bot_said(self, view: CallView, msg: Any) -> None:
        if view.speaking == "bot":
            self.speaking(view, None)
        self.said(view, "bot", getattr(msg, "content", None), interrupted=bool(getattr(msg, "interrupted", False)))

    # --- pushing ------------------------------------------------------------------------------

    def _refresh(self, view: CallView) -> None:
        stats = getattr(view.transport, "stats", None)
        if stats is not None:
            view.dtmf = int(getattr(stats, "dtmf_in", 0))
        view.duration = round(time.monotonic() - view.started_mono, 1)

    def _publish(self, view: CallView, kind: str, **data: Any) -> None:
        if not self._subscribers:
            return
        event = {"type": kind, "call": view.summary(), **data}
        for sub in list(self._subscribers):
            sub.offer(view, event)
