"""The shared machinery of the WebSocket service fakes (Cartesia, ElevenLabs): a real
``websockets`` server on 127.0.0.1, on its own thread and event loop, recording every message.

Why its own thread: the fake's timing (first byte, pacing, expiry) must not depend on the
loop of the code under test, and a test that blocks its loop must not stall the fake.
Everything it starts (thread, loop, per-connection tasks) is released by ``stop()`` within
``stop_timeout_s``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from phonewire.audio.g711 import pcm_to_ulaw
from phonewire.testing.fakes._lifecycle import FakeLifecycle
from phonewire.testing.fakes.openai_audio import SyntheticVoice

__all__ = [
    "DropConnection",
    "ErrorReply",
    "RecordedMessage",
    "RenderedText",
    "Stall",
    "ThreadedWebsocketFake",
    "TTSWebsocketFake",
    "WordLog",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DropConnection:
    """Fault: close the connection instead of answering the next input."""


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """Fault: answer the next input with the vendor's error message."""

    message: str = "Internal server error"
    code: str = "internal_error"


@dataclass(frozen=True, slots=True)
class Stall:
    """Fault: accept the next input and never produce its audio."""


FakeFault = DropConnection | ErrorReply | Stall


@dataclass(frozen=True, slots=True)
class WordLog:
    """A word the fake spoke and its span, in ms from the start of its context's audio."""

    word: str
    start_ms: float
    end_ms: float


@dataclass(slots=True)
class RecordedMessage:
    """One message in or out. ``data`` is the parsed JSON (audio replaced by its length)."""

    connection: int
    at: float
    data: Any
    raw: str = field(repr=False, default="")


class ThreadedWebsocketFake(FakeLifecycle):
    """Subclasses implement ``check_request`` (handshake) and ``on_message`` (parsed JSON)."""

    def __init__(self, *, start_timeout_s: float = 10.0, stop_timeout_s: float = 5.0) -> None:
        self.start_timeout_s, self.stop_timeout_s = start_timeout_s, stop_timeout_s
        self.received: list[RecordedMessage] = []
        self.sent: list[RecordedMessage] = []
        self.connections = 0
        self.handshakes: list[dict[str, str]] = []
        self._faults: collections.deque[FakeFault] = collections.deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._stopped: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._live: set[ServerConnection] = set()
        self.port = 0

    # --- scripting ----------------------------------------------------------------------------

    def fail_next(self, fault: FakeFault, *, times: int = 1) -> None:
        """Answer the next ``times`` inputs (text messages) with ``fault``."""
        with self._lock:
            self._faults.extend([fault] * times)

    def take_fault(self) -> FakeFault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def drop_connections(self) -> None:
        """Close every open connection now (from any thread)."""
        if self._loop is not None:
            for ws in list(self._live):
                asyncio.run_coroutine_threadsafe(ws.close(1011, "dropped"), self._loop)

    # --- hooks --------------------------------------------------------------------------------

    def check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        return None

    async def on_message(self, ws: ServerConnection, conn: int, data: Any) -> None:
        raise NotImplementedError

    async def on_close(self, ws: ServerConnection, conn: int) -> None:
        """The connection ended (either side)."""

    # --- helpers for subclasses ------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send(self, ws: ServerConnection, message: dict[str, Any]) -> None:
        raw = json.dumps(message, separators=(",", ":"))
        self.sent.append(RecordedMessage(getattr(ws, "_fake_conn", 0), time.monotonic(), _elide(message), raw))
        with contextlib.suppress(Exception):
            await ws.send(raw)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=type(self).__name__, daemon=True)
        self._thread.start()
        if not ready.wait(self.start_timeout_s) or not self.port:
            raise RuntimeError(f"{type(self).__name__} did not start")

    def stop(self) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(self.stop_timeout_s)
            self._thread = None

    def _run(self, ready: threading.Event) -> None:
        asyncio.run(self._main(ready))

    async def _main(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        async with serve(self._handle, "127.0.0.1", 0, process_request=self.check_request, max_size=4 << 20) as server:
            self._server = server
            self.port = next(iter(server.sockets)).getsockname()[1]
            ready.set()
            await self._stopped.wait()
            for ws in list(self._live):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(1001, "fake stopping"), 1.0)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        conn = self.connections
        ws._fake_conn = conn  # type: ignore[attr-defined]
        self.handshakes.append({k.lower(): v for k, v in ws.request.headers.raw_items()} if ws.request else {})
        self._live.add(ws)
        try:
            async for raw in ws:
                if isinstance(raw, bytes):
                    await ws.close(1003, "binary frames are not accepted")
                    break
                try:
                    data = json.loads(raw)
                except ValueError:
                    data = None
                self.received.append(RecordedMessage(conn, time.monotonic(), data, raw))
                await self.on_message(ws, conn, data)
        except Exception as exc:  # a broken client connection ends only that connection
            logger.debug("fake connection %d ended: %r", conn, exc)
        finally:
            self._live.discard(ws)
            await self.on_close(ws, conn)


@dataclass(frozen=True, slots=True)
class RenderedText:
    """One piece of text as a TTS fake speaks it: its words placed in the context, the audio
    (the gap after the previous piece, then the speech; μ-law or PCM16), and how to cut it."""

    words: list[WordLog]
    audio: bytes
    #: Bytes per audio message (``chunk_ms`` of audio) and per sample.
    chunk_bytes: int
    width: int
    #: Where the context's audio ends after this piece, in ms.
    end_ms: float


class TTSWebsocketFake(ThreadedWebsocketFake):
    """What the TTS fakes (Cartesia, ElevenLabs) share: the API key they expect, their pacing
    (``first_byte_s`` before a context's first audio, ``chunk_ms`` per message, ``realtime``: at
    this multiple of real time, 0 as fast as possible) and the synthetic voice they speak with."""

    def __init__(
        self,
        *,
        api_key: str | None,
        first_byte_s: float,
        chunk_ms: float,
        realtime: float,
        voice: SyntheticVoice | None,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.first_byte_s, self.chunk_ms, self.realtime = first_byte_s, chunk_ms, realtime
        self.voice = voice or SyntheticVoice(sample_rate=8000)

    @property
    def base_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def voice_at(self, sample_rate: int) -> SyntheticVoice:
        """The fake's voice at the rate a context asked for."""
        v = self.voice
        return SyntheticVoice(v.ms_per_char, v.word_gap_ms, sample_rate, v.amplitude)

    def render(self, cursor_ms: float, voice: SyntheticVoice, text: str, *, mulaw: bool) -> RenderedText:
        """``text`` spoken after ``cursor_ms`` of the context's audio (a word gap first, unless it
        is the context's first piece)."""
        gap = voice.word_gap_ms if cursor_ms else 0.0
        base = cursor_ms + gap  # where this text's first word starts, in the context
        words = [WordLog(s.word, base + s.start_ms, base + s.end_ms) for s in voice.word_spans(text)]
        pcm = bytes(2 * int(round(gap * voice.sample_rate / 1000))) + voice.synthesize(text)
        width = 1 if mulaw else 2
        chunk = max(1, int(voice.sample_rate * self.chunk_ms / 1000)) * width
        end_ms = words[-1].end_ms if words else cursor_ms
        return RenderedText(words, pcm_to_ulaw(pcm) if mulaw else pcm, chunk, width, end_ms)

    async def pace(self) -> None:
        """After each audio message: wait its share of real time, if pacing."""
        if self.realtime:
            await asyncio.sleep(self.chunk_ms / 1000 / self.realtime)


def _elide(message: dict[str, Any]) -> dict[str, Any]:
    out = dict(message)
    for key in ("data", "audio"):
        if isinstance(out.get(key), str):
            out[key] = f"<{len(out[key])} b64 chars>"
    return out
