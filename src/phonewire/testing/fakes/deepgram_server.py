"""``FakeDeepgramServer``: a real local WebSocket server speaking Deepgram's live ``/v1/listen``.

Like ``FakeOpenAIServer`` it runs on **its own thread and event loop** (the ``websockets``
library's asyncio server), so a test that blocks its loop cannot stall it. It checks the
``Authorization: Token ...`` header and the query (HTTP 401/400 with ``dg-error`` otherwise),
takes binary audio and the KeepAlive/Finalize/CloseStream text messages, rejects what Deepgram
rejects (an empty binary frame closes 1008 ``DATA-0000``; a text frame that is not a control
message gets an ``Error``/``SchemaError``), closes 1011 ``NET-0001`` after ``idle_timeout_s``
without audio or KeepAlive, and answers with scripted transcripts (``deepgram_script``).
Everything received and sent is recorded per connection in ``connections``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from phonewire.services.deepgram.live_connection import redacting_logger
from phonewire.testing.fakes._lifecycle import WaitableFake
from phonewire.testing.fakes.deepgram_script import (
    DropConnection,
    LiveSession,
    RejectConnect,
    SendError,
    SlowConnect,
    Utterance,
    error_message,
)

__all__ = ["FakeDeepgramServer", "RecordedConnection"]

_BOOL = {"true", "false"}
_KNOWN = {
    "model", "language", "encoding", "sample_rate", "channels", "multichannel", "interim_results", "punctuate",
    "smart_format", "endpointing", "utterance_end_ms", "vad_events", "numerals", "profanity_filter", "dictation",
    "keyterm", "keywords", "replace", "search", "redact", "diarize", "diarize_model", "detect_entities", "tag",
    "extra", "mip_opt_out", "version", "language_hint", "callback", "callback_method",
}  # fmt: skip
_ENCODINGS = {"linear16", "mulaw", "alaw"}  # the raw encodings the fake can hear


@dataclass
class RecordedConnection:
    """One connection as the fake saw it. ``api_key_last4`` only: the key itself is not kept."""

    index: int
    query: dict[str, str]
    auth_scheme: str
    api_key_last4: str
    opened_at: float
    audio: bytearray = field(default_factory=bytearray)
    audio_messages: int = 0
    received: list[Any] = field(default_factory=list)  # control messages (parsed JSON, or the raw text)
    sent: list[dict[str, Any]] = field(default_factory=list)
    keepalives: int = 0
    finalizes: int = 0
    close_code: int | None = None
    close_reason: str = ""
    closed_at: float | None = None

    @property
    def encoding(self) -> str:
        return self.query.get("encoding", "")

    @property
    def is_mulaw(self) -> bool:
        return self.encoding == "mulaw" and self.query.get("sample_rate") == "8000"

    def finals(self) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("type") == "Results" and m.get("is_final")]


class FakeDeepgramServer(WaitableFake):
    """``with FakeDeepgramServer(transcripts=["hello there"]) as fake:`` then point the service at
    ``fake.base_url`` (``ws://127.0.0.1:PORT``) with ``api_key=fake.api_key``."""

    wait_timeout_s: ClassVar[float] = 10.0

    def __init__(
        self,
        *,
        transcripts: list[str | Utterance] | tuple[str | Utterance, ...] = (),
        default_transcript: str = "hello",
        api_key: str = "dg-test-key",
        idle_timeout_s: float = 10.0,
        interim_every_ms: float = 400.0,
        endpointing_ms: float | None = None,
        start_timeout_s: float = 10.0,
    ) -> None:
        self.api_key = api_key
        self.idle_timeout_s = idle_timeout_s
        self.interim_every_ms = interim_every_ms
        self.endpointing_ms = endpointing_ms  # overrides the query's value when set
        self.default_transcript = Utterance(default_transcript)
        self.connections: list[RecordedConnection] = []
        self.rejected_handshakes = 0
        self._script: deque[Utterance] = deque(Utterance(t) if isinstance(t, str) else t for t in transcripts)
        self._faults: deque[Any] = deque()
        self._cond = threading.Condition()
        self._start_timeout = start_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- scripting --------------------------------------------------------------------------

    def add_transcripts(self, *items: str | Utterance) -> None:
        with self._cond:
            self._script.extend(Utterance(t) if isinstance(t, str) else t for t in items)

    def fail_next(self, fault: DropConnection | SendError | SlowConnect | RejectConnect, times: int = 1) -> None:
        with self._cond:
            self._faults.extend([fault] * times)

    def _peek(self) -> Utterance:
        with self._cond:
            return self._script[0] if self._script else self.default_transcript

    def _next(self) -> Utterance:
        with self._cond:
            return self._script.popleft() if self._script else self.default_transcript

    def _take_faults(self, kinds: tuple[type, ...], first_only: bool = False) -> list[Any]:
        with self._cond:
            taken = [f for f in self._faults if isinstance(f, kinds)]
            if first_only:
                taken = taken[:1]
            for fault in taken:
                self._faults.remove(fault)
            return taken

    @property
    def base_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="fake-deepgram", daemon=True)
        self._thread.start()
        if not ready.wait(self._start_timeout) or self._server is None:
            raise RuntimeError("FakeDeepgramServer did not start")

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is not None and server is not None and loop.is_running():
            loop.call_soon_threadsafe(server.close)
        if self._thread is not None:
            self._thread.join(10)
        self._thread = None

    def _run(self, ready: threading.Event) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._server = await serve(
                self._handle,
                "127.0.0.1",
                0,
                process_request=self._process_request,
                ping_interval=None,
                logger=redacting_logger("phonewire.testing.fake_deepgram"),
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            await self._server.wait_closed()

        asyncio.run(main())

    # --- the handshake ----------------------------------------------------------------------

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        for fault in self._take_faults((SlowConnect,), first_only=True):
            await asyncio.sleep(fault.secs)
        for fault in self._take_faults((RejectConnect,), first_only=True):
            return self._refuse(connection, fault.status, fault.dg_error)
        parts = urlsplit(request.path)
        if parts.path != "/v1/listen":
            return self._refuse(connection, 404, "not found")
        scheme, _, key = (request.headers.get("Authorization") or "").partition(" ")
        if scheme not in ("Token", "Bearer") or key != self.api_key:
            return self._refuse(connection, 401, "INVALID_AUTH: invalid credentials")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        problem = _check_query(query)
        if problem:
            return self._refuse(connection, 400, problem)
        return None

    def _refuse(self, connection: ServerConnection, status: int, reason: str) -> Response:
        self.rejected_handshakes += 1
        response = connection.respond(status, reason + "\n")
        response.headers["dg-error"] = reason
        response.headers["dg-request-id"] = "fake-request"
        self._notify()
        return response

    # --- one connection ---------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        query = dict(parse_qsl(urlsplit(ws.request.path).query, keep_blank_values=True))
        scheme, _, key = (ws.request.headers.get("Authorization") or "").partition(" ")
        with self._cond:
            rec = RecordedConnection(len(self.connections), query, scheme, key[-4:], time.monotonic())
            self.connections.append(rec)
            self._cond.notify_all()
        session = self._session(query)
        try:
            await self._serve(ws, rec, session)
        except ConnectionClosed:
            pass
        finally:
            rcvd = ws.protocol.close_sent or ws.protocol.close_rcvd
            with self._cond:
                rec.close_code = rcvd.code if rcvd else None
                rec.close_reason = rcvd.reason if rcvd else ""
                rec.closed_at = time.monotonic()
                self._cond.notify_all()

    def _session(self, query: dict[str, str]) -> LiveSession:
        endpointing = query.get("endpointing", "10")
        end_ms = None if endpointing == "false" else float(endpointing)
        return LiveSession(
            encoding=query.get("encoding", "linear16"),
            sample_rate=int(query.get("sample_rate", "16000")),
            interim_results=query.get("interim_results") == "true",
            endpointing_ms=self.endpointing_ms if self.endpointing_ms is not None else end_ms,
            utterance_end_ms=float(query["utterance_end_ms"]) if "utterance_end_ms" in query else None,
            vad_events=query.get("vad_events") == "true",
            peek_utterance=self._peek,
            next_utterance=self._next,
            faults=self._take_faults((DropConnection, SendError), first_only=True),
            interim_every_ms=self.interim_every_ms,
        )

    async def _serve(self, ws: ServerConnection, rec: RecordedConnection, session: LiveSession) -> None:
        last_data = time.monotonic()
        while True:
            try:
                async with asyncio.timeout(max(0.0, last_data + self.idle_timeout_s - time.monotonic())):
                    message = await ws.recv()
            except TimeoutError:
                await ws.close(1011, "NET-0001: no audio received within the timeout")
                return
            if isinstance(message, bytes):
                if not message:
                    await ws.close(1008, "DATA-0000: empty audio frame")
                    return
                last_data = time.monotonic()
                with self._cond:
                    rec.audio += message
                    rec.audio_messages += 1
                    self._cond.notify_all()
                await self._send(ws, rec, session.feed(message))
                if await self._act(ws, session):
                    return
                continue
            kind = _control_type(message)
            with self._cond:
                rec.received.append(_parsed(message))
                rec.keepalives += kind == "KeepAlive"
                rec.finalizes += kind == "Finalize"
                self._cond.notify_all()
            if kind == "KeepAlive":
                last_data = time.monotonic()
            elif kind == "Finalize":
                await self._send(ws, rec, session.finalize())
            elif kind == "CloseStream":
                await self._send(ws, rec, session.close_stream())
                await ws.close(1000, "")
                return
            else:
                error = error_message("SchemaError", "could not parse the client message", message[:200])
                await self._send(ws, rec, [error])

    async def _send(self, ws: ServerConnection, rec: RecordedConnection, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            with self._cond:
                rec.sent.append(message)
                self._cond.notify_all()
            await ws.send(json.dumps(message))

    async def _act(self, ws: ServerConnection, session: LiveSession) -> bool:
        action, session.action = session.action, None
        if isinstance(action, DropConnection):
            if action.abrupt:
                ws.transport.abort()
            else:
                await ws.close(action.code, action.reason)
            return True
        if isinstance(action, SendError):
            await ws.close(1011, action.description[:100])
            return True
        return False


def _control_type(message: str) -> str | None:
    parsed = _parsed(message)
    kind = parsed.get("type") if isinstance(parsed, dict) else None
    return kind if kind in ("KeepAlive", "Finalize", "CloseStream") and len(parsed) == 1 else None


def _parsed(message: str) -> Any:
    with contextlib.suppress(ValueError):
        return json.loads(message)
    return message


def _check_query(query: dict[str, str]) -> str | None:
    unknown = sorted(set(query) - _KNOWN)
    if unknown:
        return f"unknown query parameter {unknown[0]!r}"
    for name in ("interim_results", "punctuate", "smart_format", "vad_events"):
        if name in query and query[name] not in _BOOL:
            return f"{name} must be true or false"
    encoding = query.get("encoding")
    if encoding is not None and encoding not in _ENCODINGS:
        return f"unsupported encoding {encoding!r} (fake: linear16, mulaw, alaw)"
    if encoding is not None and not query.get("sample_rate", "").isdigit():
        return "sample_rate is required with encoding"
    if query.get("endpointing", "10") != "false" and not query.get("endpointing", "10").isdigit():
        return "endpointing must be an integer or false"
    if "utterance_end_ms" in query:
        if not query["utterance_end_ms"].isdigit():
            return "utterance_end_ms must be an integer"
        if query.get("interim_results") != "true":
            return "utterance_end_ms requires interim_results=true"
    return None
