"""``FakeRealtimeServer``: a real WebSocket server on 127.0.0.1 speaking OpenAI Realtime (GA).

Like ``FakeOpenAIServer`` it runs on its own thread and event loop, so its pacing does not
depend on the loop under test. Each connection is one ``RealtimeSessionState`` (sans-I/O, in
``realtime_session.py``); this module only moves its events and paces the audio: one chunk of
``chunk_ms`` every ``chunk_ms / speed`` ms (faster than real time, as the API streams). Every
event in both directions is recorded for assertions and SDK-type validation.

Point a client at it with ``base_url=fake.base_url`` (``http://127.0.0.1:PORT/v1``): the
Realtime URL ``ws://127.0.0.1:PORT/v1/realtime?model=...`` follows as the SDK derives it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

from phonewire.testing.fakes._lifecycle import OpenAIRoot, WaitableFake
from phonewire.testing.fakes.openai_audio import SyntheticVoice
from phonewire.testing.fakes.realtime_session import RealtimeFault, RealtimeReply, RealtimeSessionState

__all__ = ["FakeRealtimeServer", "RecordedSession"]

logger = logging.getLogger(__name__)
MAX_SCRIPT = 10_000


@dataclass
class RecordedSession:
    """One connection. ``client_events``/``server_events`` are (monotonic time, event)."""

    index: int
    path: str
    has_auth: bool
    connected_at: float
    state: RealtimeSessionState
    client_events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    server_events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    first_delta_at: list[float] = field(default_factory=list)  # per response
    closed_at: float | None = None

    def client(self, kind: str) -> list[dict[str, Any]]:
        return [e for _, e in self.client_events if e.get("type") == kind]

    def server(self, kind: str) -> list[dict[str, Any]]:
        return [e for _, e in self.server_events if e.get("type") == kind]


class FakeRealtimeServer(WaitableFake, OpenAIRoot):
    """``with FakeRealtimeServer(replies=[...]) as fake:``; ``fake.sessions`` records each one.

    Args:
        replies: what the model says, response by response (``RealtimeReply``, str, or a
            ``RealtimeFault``); then ``default_reply``.
        transcripts: the caller's turns as the input transcription reports them.
        speed: audio streamed this many times faster than real time.
        chunk_ms: audio per ``response.output_audio.delta``.
        require_auth: refuse (HTTP 401) upgrades without ``Authorization: Bearer``.
        session_delay_s: wait this long before ``session.created`` (models the TLS + WS
            handshake and the API's own set-up on a real network; benchmarks of prewarm use it).
    """

    def __init__(
        self,
        *,
        replies: list[RealtimeReply | RealtimeFault | str] | tuple[RealtimeReply | RealtimeFault | str, ...] = (),
        default_reply: str = "This is a reply from the fake realtime server.",
        transcripts: list[str] | tuple[str, ...] = (),
        speed: float = 4.0,
        chunk_ms: int = 100,
        voice: SyntheticVoice | None = None,
        require_auth: bool = True,
        session_delay_s: float = 0.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.session_delay_s = session_delay_s
        self.default_reply = RealtimeReply(default_reply)
        self.transcripts = list(transcripts)
        self.speed = speed
        self.chunk_ms = chunk_ms
        self.voice = voice or SyntheticVoice(sample_rate=8000)
        self.require_auth = require_auth
        self.stop_timeout_s = stop_timeout_s
        self._lock = threading.RLock()  # predicates of wait_for read the records under it
        self._cond = threading.Condition(self._lock)
        self._script: collections.deque[RealtimeReply | RealtimeFault] = collections.deque()
        self._sessions: list[RecordedSession] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._port: int | None = None
        self.script(*replies)

    def script(self, *replies: RealtimeReply | RealtimeFault | str) -> None:
        with self._lock:
            if len(self._script) + len(replies) > MAX_SCRIPT:
                raise ValueError(f"the script is capped at {MAX_SCRIPT} replies")
            self._script.extend(RealtimeReply(r) if isinstance(r, str) else r for r in replies)

    def _next_reply(self) -> RealtimeReply | RealtimeFault:
        with self._lock:
            return self._script.popleft() if self._script else self.default_reply

    # --- records -----------------------------------------------------------------------

    @property
    def sessions(self) -> list[RecordedSession]:
        with self._lock:
            return list(self._sessions)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("FakeRealtimeServer already started")
        ready = threading.Event()

        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            async with serve(self._serve, "127.0.0.1", 0, process_request=self._check, max_size=16 << 20) as server:
                self._port = _port(server)
                ready.set()
                await self._stop.wait()

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException:
                logger.exception("FakeRealtimeServer thread failed")
            finally:
                ready.set()

        self._thread = threading.Thread(target=run, name="FakeRealtimeServer", daemon=True)
        self._thread.start()
        if not ready.wait(10) or self._port is None:
            raise RuntimeError("FakeRealtimeServer did not start")

    def stop(self) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        thread.join(self.stop_timeout_s)
        self._thread = self._loop = self._stop = None
        self._port = None

    # --- one connection ----------------------------------------------------------------

    def _check(self, connection: ServerConnection, request: Any) -> Any:
        if not request.path.startswith("/v1/realtime"):
            return connection.respond(404, "not found\n")
        auth = request.headers.get("Authorization", "")
        if self.require_auth and not auth.startswith("Bearer "):
            return connection.respond(401, "missing bearer token\n")
        return None

    async def _serve(self, ws: ServerConnection) -> None:
        state = RealtimeSessionState(transcripts=self.transcripts, voice=self.voice, chunk_ms=self.chunk_ms)
        path = ws.request.path if ws.request else ""
        has_auth = bool(ws.request and ws.request.headers.get("Authorization"))
        with self._lock:
            record = RecordedSession(len(self._sessions), path, has_auth, time.monotonic(), state)
            self._sessions.append(record)
        link = _Link(ws, record, self)
        pacer = asyncio.get_running_loop().create_task(link.pace())
        try:
            if self.session_delay_s:
                await asyncio.sleep(self.session_delay_s)
            await link.send(state.created())
            async for message in ws:
                try:
                    obj = json.loads(message)
                except ValueError:
                    error = {"type": "invalid_request_error", "code": "invalid_json", "message": "bad JSON"}
                    await link.send([state.event("error", error=error)])
                    continue
                with self._lock:
                    record.client_events.append((time.monotonic(), obj))
                self._notify()
                await link.send(state.handle(obj, link.next_reply))
                link.wake.set()
        except Exception:  # a closed socket ends the session
            pass
        finally:
            pacer.cancel()
            await asyncio.gather(pacer, return_exceptions=True)
            record.closed_at = time.monotonic()
            self._notify()


class _Link:
    """Sends a session's events and paces its audio; acts out a response's fault."""

    def __init__(self, ws: ServerConnection, record: RecordedSession, fake: FakeRealtimeServer) -> None:
        self.ws, self.record, self.fake = ws, record, fake
        self.wake = asyncio.Event()

    def next_reply(self) -> Any:
        return self.fake._next_reply()

    async def send(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            await self.ws.send(json.dumps(event))
            with self.fake._lock:
                self.record.server_events.append((time.monotonic(), event))
            if event["type"] == "response.created":
                self.wake.set()
        if events:
            self.fake._notify()

    async def pace(self) -> None:
        state = self.record.state
        interval = state.chunk_ms / 1000 / self.fake.speed
        while True:
            response = state.response
            if response is None:
                self.wake.clear()
                await self.wake.wait()
                continue
            fault = response.reply if isinstance(response.reply, RealtimeFault) else None
            if fault is not None and response.sent >= fault.after_chunks and await self._act(fault):
                return
            if response.sent == 0:
                self.record.first_delta_at.append(time.monotonic())
            await self.send(state.next_delta())
            await asyncio.sleep(interval)

    async def _act(self, fault: RealtimeFault) -> bool:
        state = self.record.state
        if fault.kind == "drop":
            await self.ws.close(1011, "fake: dropped")
            return True
        if fault.kind == "expire":
            message = "Your session hit the maximum duration of 60 minutes."
            await self.send([state.event("error", error={"type": "invalid_request_error", "code": "session_expired",
                                                          "message": message, "param": None})])  # fmt: skip
            await self.ws.close(1001, message)
            return True
        if fault.kind == "error":
            error = {
                "type": "server_error",
                "code": "server_error",
                "message": "The server had an error",
                "param": None,
            }
            await self.send([state.event("error", error=error), *state.finish_response("failed", None)])
            return False
        await asyncio.sleep(3600)  # stall: the response stays open and silent
        return True


def _port(server: Server) -> int:
    return int(next(iter(server.sockets)).getsockname()[1])
