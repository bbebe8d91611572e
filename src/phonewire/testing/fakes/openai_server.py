"""``FakeOpenAIServer``: a real HTTP server on 127.0.0.1 that speaks the OpenAI API, scripted.

It runs uvicorn on **its own thread and event loop**, so its timing (time to first token, audio
pacing) does not depend on the loop of the code under test, and a test that blocks its own loop
cannot stall the fake. Everything the fake owns (the thread, the loop, per-request watcher tasks,
hanging requests) is released by ``stop()``, within bounded timeouts.

Times (``arrived_at``, ``first_byte_at``...) are ``time.monotonic()`` seconds, the clock asyncio's
default loop uses, so they compare directly with ``loop.time()`` in the test.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn

from phonewire.testing.fakes._lifecycle import FakeLifecycle, OpenAIRoot
from phonewire.testing.fakes.openai_audio import DEFAULT_VOICE, SyntheticVoice
from phonewire.testing.fakes.openai_script import (
    FAULT_TYPES,
    BadJSON,
    ChatLatency,
    ChatReply,
    Fault,
    SpeechLatency,
    StreamError,
    as_chat_reply,
)

__all__ = ["Endpoint", "FakeOpenAIServer", "RecordedRequest"]

logger = logging.getLogger(__name__)

Endpoint = Literal["chat", "speech", "transcriptions", "models", "other"]
ChatResponder = Callable[[dict[str, Any]], "ChatReply | Fault | str"]
TranscriptionResponder = Callable[[bytes, dict[str, str]], "str | Fault"]
MAX_SCRIPT = 10_000  # queued replies/faults per endpoint: a runaway test loop fails loudly


@dataclass(slots=True)
class RecordedRequest:
    """One request as the fake received it, and what it sent back.

    ``headers`` are lower-cased; ``authorization`` is redacted to ``"Bearer ...abcd"`` (the key's
    last 4 characters), with ``has_auth``/``api_key_last4`` for assertions. Fields the server
    fills in while answering (``status``, ``first_byte_at``...) are written from the fake's
    thread; read them after ``wait_for_requests(..., completed=True)``.
    """

    index: int
    endpoint: Endpoint
    method: str
    path: str
    headers: dict[str, str]
    has_auth: bool
    api_key_last4: str | None
    arrived_at: float
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    audio: bytes | None = None
    audio_filename: str | None = None
    fault: str | None = None
    status: int | None = None
    first_byte_at: float | None = None
    completed_at: float | None = None
    disconnected: bool = False
    response_json: Any = None
    sse_events: list[str] = field(default_factory=list)
    event_times: list[float] = field(default_factory=list)
    audio_bytes_sent: int = 0

    @property
    def audio_bytes(self) -> int | None:
        """Length of the uploaded audio file (transcriptions), or None."""
        return None if self.audio is None else len(self.audio)

    @property
    def completed(self) -> bool:
        return self.completed_at is not None


class FakeOpenAIServer(FakeLifecycle, OpenAIRoot):
    """A scripted OpenAI-compatible server. ``with FakeOpenAIServer() as fake:`` or ``async with``.

    Point the SDK at it: ``AsyncOpenAI(base_url=fake.base_url, api_key="test")``.

    Args:
        chat_replies: initial chat script (``TextReply``, ``ToolCallsReply``, a fault, or a str).
        default_reply: answered when the script is empty and no ``chat_responder`` is set.
        chat_responder: ``(request_json) -> reply`` consulted when the script is empty.
        transcripts: initial transcription script (str or fault).
        default_transcript: answered when that script is empty and no responder is set.
        transcription_responder: ``(audio_bytes, form_fields) -> text``.
        chat_latency, speech_latency, transcription_latency_s: timing (see their types).
        voice: the synthetic TTS voice (word durations).
        models: ids listed by ``GET /v1/models``.
        require_auth: answer 401 to requests without ``Authorization: Bearer ...``.
        max_body_bytes / max_upload_bytes: caps on JSON / multipart bodies (413 beyond).
        max_concurrent_streams: streamed responses in flight beyond this get a 503.
        start_timeout_s / stop_timeout_s: bounds on startup and shutdown.
    """

    def __init__(
        self,
        *,
        chat_replies: tuple[ChatReply | Fault | str, ...] | list[ChatReply | Fault | str] = (),
        default_reply: ChatReply | str = "This is a reply from the fake OpenAI server.",
        chat_responder: ChatResponder | None = None,
        transcripts: tuple[str | Fault, ...] | list[str | Fault] = (),
        default_transcript: str = "hello",
        transcription_responder: TranscriptionResponder | None = None,
        chat_latency: ChatLatency | None = None,
        speech_latency: SpeechLatency | None = None,
        transcription_latency_s: float = 0.0,
        voice: SyntheticVoice = DEFAULT_VOICE,
        models: tuple[str, ...] = ("gpt-4o-mini", "tts-1", "gpt-4o-mini-tts", "whisper-1", "gpt-4o-transcribe"),
        require_auth: bool = True,
        max_body_bytes: int = 4 << 20,
        max_upload_bytes: int = 25 << 20,
        max_concurrent_streams: int = 64,
        start_timeout_s: float = 10.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.default_reply: ChatReply = as_chat_reply(default_reply)  # type: ignore[assignment]
        self.chat_responder = chat_responder
        self.default_transcript = default_transcript
        self.transcription_responder = transcription_responder
        self.chat_latency = chat_latency or ChatLatency()
        self.speech_latency = speech_latency or SpeechLatency()
        self.transcription_latency_s = transcription_latency_s
        self.voice = voice
        self.models = models
        self.require_auth = require_auth
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.max_concurrent_streams = max_concurrent_streams
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._chat_script: collections.deque[ChatReply | Fault] = collections.deque()
        self._transcripts: collections.deque[str | Fault] = collections.deque()
        self._faults: dict[Endpoint, collections.deque[Fault]] = collections.defaultdict(collections.deque)
        self._requests: list[RecordedRequest] = []
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._thread: threading.Thread | None = None
        self._server: _Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._port: int | None = None
        self._failure: BaseException | None = None
        self.script_chat(*chat_replies)
        self.script_transcripts(*transcripts)

    # --- scripting ------------------------------------------------------------------------

    def script_chat(self, *replies: ChatReply | Fault | str) -> None:
        """Append chat replies (or faults, answered in order, one per request)."""
        with self._lock:
            if len(self._chat_script) + len(replies) > MAX_SCRIPT:
                raise ValueError(f"chat script is capped at {MAX_SCRIPT} entries")
            self._chat_script.extend(as_chat_reply(r) for r in replies)

    def script_transcripts(self, *items: str | Fault) -> None:
        """Append transcription answers (text, or a fault), one per request."""
        with self._lock:
            if len(self._transcripts) + len(items) > MAX_SCRIPT:
                raise ValueError(f"transcription script is capped at {MAX_SCRIPT} entries")
            self._transcripts.extend(items)

    def fail_next(self, fault: Fault, *, endpoint: Endpoint = "chat", times: int = 1) -> None:
        """Answer the next ``times`` requests to ``endpoint`` with ``fault``, before any script.
        ``BadJSON``/``StreamError`` only make sense for streamed chat."""
        if not isinstance(fault, FAULT_TYPES):
            raise TypeError(f"not a fault: {fault!r}")
        if isinstance(fault, BadJSON | StreamError) and endpoint != "chat":
            raise ValueError(f"{type(fault).__name__} applies to streamed chat only")
        with self._lock:
            queue = self._faults[endpoint]
            if len(queue) + times > MAX_SCRIPT:
                raise ValueError(f"fault queue is capped at {MAX_SCRIPT} entries")
            queue.extend([fault] * times)

    def pending_chat_replies(self) -> int:
        with self._lock:
            return len(self._chat_script)

    def _take_fault(self, endpoint: Endpoint) -> Fault | None:
        with self._lock:
            queue = self._faults.get(endpoint)
            return queue.popleft() if queue else None

    def _next_chat(self, request: dict[str, Any], *, faults: bool = True) -> ChatReply | Fault:
        """Per-request fault, else the script, else the responder, else the default reply."""
        if faults and (fault := self._take_fault("chat")) is not None:
            return fault
        with self._lock:
            scripted = self._chat_script.popleft() if self._chat_script else None
        if scripted is not None:
            return scripted
        if self.chat_responder is not None:
            return as_chat_reply(self.chat_responder(request))
        return self.default_reply

    def _next_transcript(self, audio: bytes, form: dict[str, str], *, faults: bool = True) -> str | Fault:
        if faults and (fault := self._take_fault("transcriptions")) is not None:
            return fault
        with self._lock:
            scripted = self._transcripts.popleft() if self._transcripts else None
        if scripted is not None:
            return scripted
        if self.transcription_responder is not None:
            return self.transcription_responder(audio, form)
        return self.default_transcript

    # --- recorded requests ----------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, endpoint: Endpoint) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if r.endpoint == endpoint]

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return self.requests_to("chat")

    @property
    def speech_requests(self) -> list[RecordedRequest]:
        return self.requests_to("speech")

    @property
    def transcription_requests(self) -> list[RecordedRequest]:
        return self.requests_to("transcriptions")

    def _matching(self, endpoint: Endpoint | None, completed: bool) -> list[RecordedRequest]:
        return [
            r
            for r in self._requests
            if (endpoint is None or r.endpoint == endpoint) and (not completed or r.completed_at is not None)
        ]

    def wait_for_requests(
        self, count: int, *, endpoint: Endpoint | None = None, completed: bool = False, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Block until ``count`` matching requests arrived (and, if ``completed``, were fully
        answered); returns them. Raises ``TimeoutError``. For sync tests; async code should use
        ``wait_for_requests_async`` so its loop keeps running."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._matching(endpoint, completed)) >= count, timeout):
                raise TimeoutError(f"{len(self._matching(endpoint, completed))} of {count} {endpoint or ''} requests")
            return self._matching(endpoint, completed)[:count]

    async def wait_for_requests_async(
        self, count: int, *, endpoint: Endpoint | None = None, completed: bool = False, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """``wait_for_requests`` without blocking the caller's loop (woken by the fake's thread)."""
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._lock:
            self._async_waiters.add(waiter)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event.clear()
                    with self._lock:
                        found = self._matching(endpoint, completed)
                    if len(found) >= count:
                        return found[:count]
                    await event.wait()
        except TimeoutError:
            raise TimeoutError(f"{len(found)} of {count} {endpoint or ''} requests") from None
        finally:
            with self._lock:
                self._async_waiters.discard(waiter)

    def _notify(self) -> None:
        """Wake sync and async waiters; called from the fake's thread after a record changes."""
        with self._changed:
            self._changed.notify_all()
            waiters = list(self._async_waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed: its waiter is gone
                loop.call_soon_threadsafe(event.set)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            request.index = len(self._requests)
            self._requests.append(request)
        self._notify()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Bind a free port on 127.0.0.1 and serve from a new thread; returns once it accepts."""
        if self._thread is not None:
            raise RuntimeError("FakeOpenAIServer already started")
        from phonewire.testing.fakes.openai_app import OpenAIApp

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            OpenAIApp(self), log_config=None, lifespan="off", timeout_graceful_shutdown=2, timeout_keep_alive=5
        )
        started = threading.Event()
        self._server = server = _Server(config, started)

        def run() -> None:
            async def main() -> None:
                self._loop = asyncio.get_running_loop()
                await server.serve(sockets=[sock])

            try:
                asyncio.run(main())
            except BaseException as exc:  # reported to start()/stop() in the caller's thread
                self._failure = exc
                logger.exception("FakeOpenAIServer thread failed")
            finally:
                sock.close()
                started.set()

        self._thread = threading.Thread(target=run, name=f"FakeOpenAIServer:{self._port}", daemon=True)
        self._thread.start()
        if not started.wait(self.start_timeout_s) or not server.started:
            self.stop()
            raise RuntimeError(f"FakeOpenAIServer did not start within {self.start_timeout_s} s") from self._failure
        logger.debug("FakeOpenAIServer serving on %s", self.base_url)

    def stop(self) -> None:
        """Release hanging/streaming requests, shut uvicorn down, join the thread (bounded)."""
        thread, server, loop = self._thread, self._server, self._loop
        if thread is None or server is None:
            return
        app = server.config.app
        if loop is not None and hasattr(app, "abort_all"):
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(app.abort_all)
        server.should_exit = True
        thread.join(self.stop_timeout_s)
        self._thread = self._server = self._loop = None
        self._port = None
        if thread.is_alive():
            raise RuntimeError(f"FakeOpenAIServer thread did not stop within {self.stop_timeout_s} s")

    @staticmethod
    def now() -> float:
        """The clock recorded times use."""
        return time.monotonic()


class _Server(uvicorn.Server):
    """uvicorn.Server that tells the starting thread when it accepts connections."""

    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self._started_event = started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._started_event.set()
