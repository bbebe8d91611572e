"""Graceful drain on SIGTERM, and the readiness/liveness endpoints a load balancer polls.

Why a handler of our own: uvicorn's shutdown starts by closing the listening socket and
sending every WebSocket close 1012, which ends calls mid-sentence. So the app's lifespan
replaces uvicorn's SIGTERM handler with ``DrainController``'s, which

1. marks the process draining: ``/readyz`` answers 503, the provider webhooks answer the
   configured fallback (``fallback.py``), new media streams are refused with 1013;
2. waits up to ``drain_timeout_secs`` for the active calls to end by themselves;
3. ends the rest gracefully: the ``drain_goodbye`` line (a ``TTSSpeakFrame``, if set) and an
   ``EndTaskFrame``, so queued audio plays out and the call is hung up as any bot-ended call;
   calls still up ``drain_goodbye_timeout_secs`` later are cancelled;
4. hands the signal to uvicorn's own handler, whose shutdown now finds no calls.

A second SIGTERM skips the wait (step 3 at once). Under ``--workers`` uvicorn's parent sends
SIGTERM to every worker and waits for each without a timeout, so every worker drains on its
own. Only the main thread can own signals: elsewhere (tests' in-loop servers) ``start()``
is called directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from phonewire.frames import EndTaskFrame, FrameDirection, TTSSpeakFrame
from phonewire.server.config import ServerConfig
from phonewire.server.fallback import fallback_answer
from phonewire.server.lifecycle import ActiveCall, CallRegistry

__all__ = ["DrainController", "install_drain"]

logger = logging.getLogger("phonewire.server")

#: Seconds between copies of the process-wide tallies into the metrics (``Metrics.sync_process_tallies``).
SYNC_PERIOD_SECS = 5.0
#: After cancelling the calls that outlived the goodbye, how long their tasks get to unwind.
CANCEL_GRACE_SECS = 2.0
WEBHOOK_PROVIDERS = ("twilio", "telnyx", "plivo", "vonage", "exotel")


class DrainController:
    def __init__(self, config: ServerConfig, calls: CallRegistry, metrics: Any) -> None:
        self.config = config
        self.calls = calls
        self.metrics = metrics
        #: serving -> draining (waiting for calls) -> ending (goodbyes) -> done
        self.state = "serving"
        self.done = asyncio.Event()
        self._hurry = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._previous: Any = None
        self._webhook_paths = {f"{config.webhook_prefix}/{p}": p for p in WEBHOOK_PROVIDERS}

    @property
    def draining(self) -> bool:
        return self.state != "serving"

    def readiness(self) -> tuple[bool, str]:
        if self.draining:
            return False, "draining"
        if self.metrics.active >= self.config.max_calls:
            return False, "at max_calls"
        return True, "ready"

    def start(self, reason: str = "SIGTERM") -> asyncio.Task[None]:
        """Begin draining (idempotent; called again, it stops waiting for calls to end)."""
        if self._task is not None:
            if not self._hurry.is_set():
                logger.warning("= %s again while draining: ending the remaining calls now", reason)
                self._hurry.set()
            return self._task
        self.state = "draining"
        self.metrics.set_draining(True)
        self._task = asyncio.get_running_loop().create_task(self._run(reason), name="phonewire-drain")
        return self._task

    async def _run(self, reason: str) -> None:
        cfg = self.config
        started = time.monotonic()
        logger.warning(
            "= %s: draining, %d calls active; new calls refused, waiting up to %.0fs",
            reason, len(self.calls), cfg.drain_timeout_secs,
        )  # fmt: skip
        try:
            if not await self._wait_calls(cfg.drain_timeout_secs):
                self.state = "ending"
                remaining = list(self.calls)
                logger.warning("= drain deadline: ending %d calls (goodbye, then hang-up)", len(remaining))
                for call in remaining:
                    await self._end_call(call)
                if not await self.calls.wait_empty(cfg.drain_goodbye_timeout_secs):
                    stuck = [c for c in self.calls if c.task is not None]
                    logger.warning("! %d calls did not end after the goodbye: cancelling them", len(stuck))
                    for call in stuck:
                        assert call.task is not None
                        call.task.cancel()
                    await self.calls.wait_empty(CANCEL_GRACE_SECS)
            logger.warning("= drained in %.1fs; shutting down", time.monotonic() - started)
        finally:
            self.state = "done"
            self.done.set()
            self._hand_over()

    async def _wait_calls(self, timeout: float) -> bool:
        empty = asyncio.ensure_future(self.calls.wait_empty(timeout))
        hurry = asyncio.ensure_future(self._hurry.wait())
        try:
            await asyncio.wait({empty, hurry}, return_when=asyncio.FIRST_COMPLETED)
            return empty.done() and empty.result()
        finally:
            for waiter in (empty, hurry):
                waiter.cancel()
            await asyncio.gather(empty, hurry, return_exceptions=True)

    async def _end_call(self, call: ActiveCall) -> None:
        """Goodbye (if configured) then an end, pushed from the call's input transport: the
        pipeline ends as if the bot had ended the call, so its audio plays out first."""
        call.ended_by = "drained"
        source = call.transport.input()
        try:
            if self.config.drain_goodbye:
                await source.push_frame(TTSSpeakFrame(text=self.config.drain_goodbye), FrameDirection.DOWNSTREAM)
            await source.push_frame(EndTaskFrame(reason="server shutting down"), FrameDirection.UPSTREAM)
        except Exception:
            call.transport.log.exception("! could not end the call gracefully; it will be cancelled")

    # --- signals and the lifespan --------------------------------------------------------

    def install_signal_handler(self) -> bool:
        if not self.config.drain_on_sigterm or threading.current_thread() is not threading.main_thread():
            return False
        loop = asyncio.get_running_loop()
        self._previous = signal.signal(signal.SIGTERM, lambda sig, frame: loop.call_soon_threadsafe(self.start))
        return True

    def _hand_over(self) -> None:
        """Give SIGTERM back to whoever had it (uvicorn) and deliver it to them now."""
        previous, self._previous = self._previous, None
        if previous is None:
            return
        signal.signal(signal.SIGTERM, previous)
        if callable(previous):
            previous(signal.SIGTERM, None)
        elif previous == signal.SIG_DFL:
            signal.raise_signal(signal.SIGTERM)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        installed = self.install_signal_handler()
        ticker = asyncio.get_running_loop().create_task(self._sync_loop(app), name="phonewire-metrics-sync")
        try:
            yield
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            if installed and self._previous is not None:
                signal.signal(signal.SIGTERM, self._previous)
            self.metrics.sync_process_tallies(getattr(app.state, "webhook_refusals", None))
            self.metrics.process_exited()

    async def _sync_loop(self, app: FastAPI) -> None:
        while True:
            await asyncio.sleep(SYNC_PERIOD_SECS)
            self.metrics.sync_process_tallies(getattr(app.state, "webhook_refusals", None))

    # --- the webhook fallback --------------------------------------------------------------

    def middleware(self, app: Callable[..., Any]) -> Callable[..., Any]:
        """A pure ASGI wrapper: while draining, the providers' answer webhooks get the
        fallback; everything else (callbacks for live calls, /metrics) passes through."""

        async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http" and self.state != "serving":
                provider = self._webhook_paths.get(scope["path"])
                if provider is not None:
                    status, body, media, headers = fallback_answer(provider, self.config)
                    logger.info("= %s webhook while draining: fallback (%d)", provider, status)
                    raw = [(b"content-type", media.encode()), (b"content-length", str(len(body)).encode())]
                    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
                    await send({"type": "http.response.start", "status": status, "headers": raw})
                    await send({"type": "http.response.body", "body": body})
                    return
            await app(scope, receive, send)

        return wrapped


def install_drain(app: FastAPI, config: ServerConfig, calls: CallRegistry, metrics: Any) -> DrainController:
    """Routes (/readyz, /livez), the webhook fallback and the lifespan, on ``app``."""
    drain = DrainController(config, calls, metrics)
    app.state.drain = drain

    async def readyz() -> JSONResponse:
        ready, status = drain.readiness()
        body = {"status": status, "active_calls": metrics.active, "max_calls": config.max_calls}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def livez() -> JSONResponse:
        return JSONResponse({"status": "alive", "draining": drain.draining})

    app.add_api_route("/readyz", readyz, methods=["GET"], include_in_schema=False)
    app.add_api_route("/livez", livez, methods=["GET"], include_in_schema=False)
    app.add_middleware(_Wrap, wrap=drain.middleware)
    previous = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with previous(a) as state, drain.lifespan(a):
            yield state

    app.router.lifespan_context = lifespan
    return drain


class _Wrap:
    """Adapts a function ``app -> asgi app`` to Starlette's ``add_middleware`` (a class)."""

    def __init__(self, app: Any, wrap: Callable[[Any], Any]) -> None:
        self._asgi = wrap(app)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._asgi(scope, receive, send)
