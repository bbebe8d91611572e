"""``FakeCartesiaServer``: a real local WebSocket server speaking Cartesia's TTS protocol.

Like ``FakeOpenAIServer`` it runs on its own thread and event loop, so its timing does not
depend on the code under test. Protocol (reference services.md §5): ``/tts/websocket``, auth
by ``X-API-Key``, ``Authorization: Bearer`` or ``?api_key=``, a version by header or
``?cartesia_version=``; generation requests per ``context_id`` with ``continue``; ``cancel``.
Audio is ``SyntheticVoice`` (one tone burst a word) in the requested encoding and rate, and
the ``timestamps`` messages give each word's real start and end in that audio, so a test
that knows how much the caller heard knows which words they heard. Enforced: the 1 s context
expiry (input after it gets an error), fields fixed per context. Faults: ``fail_next``.
Every message in and out is recorded (``received``, ``sent``), audio bytes elided.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from phonewire.testing.fakes.openai_audio import SyntheticVoice
from phonewire.testing.fakes.ws_fake import DropConnection, ErrorReply, Stall, TTSWebsocketFake, WordLog

__all__ = ["CartesiaContextLog", "FakeCartesiaServer"]

_FIXED = ("model_id", "voice", "output_format", "language", "add_timestamps")


@dataclass
class CartesiaContextLog:
    """One context as the fake saw it: its inputs, its words (ms in its audio), its end."""

    context_id: str
    connection: int
    transcripts: list[str] = field(default_factory=list)
    words: list[WordLog] = field(default_factory=list)
    audio_bytes: int = 0
    cancelled: bool = False
    done: bool = False
    expired_input: bool = False
    last_audio_at: float = 0.0
    fields: dict[str, Any] = field(default_factory=dict)
    cursor_ms: float = 0.0
    queue: asyncio.Queue[tuple[str, bool]] | None = None


class FakeCartesiaServer(TTSWebsocketFake):
    """``with FakeCartesiaServer() as fake:`` then ``CartesiaTTSService(base_url=fake.base_url)``.

    ``first_byte_s``: delay before a context's first audio; ``chunk_ms``: audio per chunk;
    ``realtime``: pace chunks at this multiple of real time (0: as fast as possible);
    ``expiry_s``: Cartesia's context expiry."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        first_byte_s: float = 0.05,
        chunk_ms: float = 40.0,
        realtime: float = 0.0,
        expiry_s: float = 1.0,
        voice: SyntheticVoice | None = None,
    ) -> None:
        super().__init__(api_key=api_key, first_byte_s=first_byte_s, chunk_ms=chunk_ms, realtime=realtime, voice=voice)
        self.expiry_s = expiry_s
        self.contexts: dict[str, CartesiaContextLog] = {}

    # --- handshake --------------------------------------------------------------------------

    def check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        if path != "/tts/websocket":
            return connection.respond(404, "not found\n")
        key = request.headers.get("X-API-Key") or params.get("api_key")
        bearer = request.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            key = key or bearer[7:]
        if self.api_key is not None and key != self.api_key:
            return connection.respond(401, "invalid API key\n")
        if not (request.headers.get("Cartesia-Version") or params.get("cartesia_version")):
            return connection.respond(400, "a Cartesia-Version is required\n")
        return None

    # --- messages ---------------------------------------------------------------------------

    async def on_message(self, ws: ServerConnection, conn: int, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("context_id"), str):
            await self.send(ws, {"type": "error", "done": True, "status_code": 400, "title": "Invalid request"})
            return
        cid = data["context_id"]
        if data.get("cancel") is True:
            ctx = self.contexts.get(cid)
            if ctx is not None:
                ctx.cancelled = True
            return
        ctx = self.contexts.get(cid)
        if ctx is None:
            ctx = self.contexts[cid] = CartesiaContextLog(cid, conn, fields={k: data.get(k) for k in _FIXED})
            ctx.queue = asyncio.Queue(1000)
            self.spawn(self._generate(ws, ctx))
        elif ctx.cancelled or ctx.done:
            return
        elif ctx.last_audio_at and ctx.queue is not None and ctx.queue.empty() and self._expired(ctx):
            ctx.expired_input = True
            await self._error(ws, cid, "Context has expired", "context_expired")
            return
        elif {k: data.get(k) for k in _FIXED} != ctx.fields:
            await self._error(ws, cid, "Every input of a context must repeat the same fields", "invalid_request")
            return
        fault = self.take_fault()
        if isinstance(fault, DropConnection):
            await ws.close(1011, "fault")
            return
        if isinstance(fault, ErrorReply):
            await self._error(ws, cid, fault.message, fault.code)
            ctx.done = True
            return
        if isinstance(fault, Stall):
            ctx.done = True  # never answers this context
            return
        assert ctx.queue is not None
        ctx.queue.put_nowait((str(data.get("transcript") or ""), data.get("continue") is True))

    def _expired(self, ctx: CartesiaContextLog) -> bool:
        return time.monotonic() - ctx.last_audio_at > self.expiry_s

    async def _error(self, ws: ServerConnection, cid: str, message: str, code: str) -> None:
        msg = {"type": "error", "context_id": cid, "done": True, "status_code": 400}
        await self.send(ws, {**msg, "title": "Error", "message": message, "error_code": code})

    async def _generate(self, ws: ServerConnection, ctx: CartesiaContextLog) -> None:
        assert ctx.queue is not None
        fmt = ctx.fields.get("output_format") or {}
        rate = int(fmt.get("sample_rate") or 8000)
        mulaw = fmt.get("encoding") == "pcm_mulaw"
        voice = self.voice_at(rate)
        first = True
        while not ctx.cancelled:
            transcript, more = await ctx.queue.get()
            if first and transcript.strip():
                first = False
                await asyncio.sleep(self.first_byte_s)
            if transcript.strip() and not ctx.cancelled:
                ctx.transcripts.append(transcript)
                await self._speak(ws, ctx, voice, transcript, mulaw)
            if not more:
                if not ctx.cancelled:
                    ctx.done = True
                    await self.send(
                        ws, {"type": "done", "context_id": ctx.context_id, "done": True, "status_code": 200}
                    )
                return

    async def _speak(
        self, ws: ServerConnection, ctx: CartesiaContextLog, voice: SyntheticVoice, text: str, mulaw: bool
    ) -> None:
        spoken = self.render(ctx.cursor_ms, voice, text, mulaw=mulaw)
        words = spoken.words
        ctx.words.extend(words)
        ts = {
            "words": [w.word for w in words],
            "start": [w.start_ms / 1000 for w in words],
            "end": [w.end_ms / 1000 for w in words],
        }
        cid = ctx.context_id
        await self.send(
            ws, {"type": "timestamps", "context_id": cid, "done": False, "status_code": 206, "word_timestamps": ts}
        )
        audio, per = spoken.audio, spoken.chunk_bytes
        ctx.cursor_ms = spoken.end_ms
        for i in range(0, len(audio), per):
            if ctx.cancelled:
                return
            piece = audio[i : i + per]
            chunk = {"type": "chunk", "context_id": cid, "data": base64.b64encode(piece).decode(), "done": False}
            await self.send(ws, {**chunk, "status_code": 206, "step_time": 1.0})
            ctx.audio_bytes += len(piece)
            ctx.last_audio_at = time.monotonic()
            await self.pace()
