"""``FakeElevenLabsServer``: a real local WebSocket server speaking ElevenLabs' multi-context TTS.

Runs on its own thread and loop (``TTSWebsocketFake``). Protocol (reference services.md
§6.1, §6.3, §6.4; elevenlabs-python ``SendMessageMulti`` / ``ReceiveMessageMulti``):

* ``/v1/text-to-speech/{voice_id}/multi-stream-input?model_id=&output_format=&inactivity_timeout=
  &auto_mode=``; auth by ``xi-api-key`` or ``Authorization: Bearer`` at the handshake (a wrong
  key: 401), else ``xi_api_key`` / ``authorization`` in the first message.
* Per ``context_id``: text is buffered and generated along the context's
  ``chunk_length_schedule`` (``auto_mode``: at once), ``flush`` generates the rest,
  ``close_context`` ends it: a flushed context finishes, an unflushed one stops; then
  ``isFinal``. ``close_socket`` finishes flushed contexts and closes. ``voice_settings`` or
  ``generation_config`` after a context's first message is a 1008.
* Audio is ``SyntheticVoice`` in ``ulaw_8000`` or ``pcm_<rate>``; each audio message carries
  ``alignment`` (and an equal ``normalizedAlignment``): the characters whose audio starts in
  that message, their start and duration in integer ms relative to that message's audio, so
  the alignment matches the audio to the millisecond (at 8/16/24 kHz).
* Enforced: at most ``max_contexts`` (5) contexts not yet final per connection; the 6th is
  answered with ElevenLabs' error and a 1008 close; the inactivity timeout (no message for
  ``inactivity_timeout`` s, ``inactivity_timeout_s`` overrides it in tests) likewise.

Error shapes: ElevenLabs' SDK has no type for errors. Both texts below are as reported by
users of the live service (livekit/agents-js#1985, pipecat#4041 for the context limit;
livekit/agents#218 for the timeout, whose tail after "seconds." is not verified here).
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from phonewire.testing.fakes.openai_audio import SyntheticVoice
from phonewire.testing.fakes.ws_fake import DropConnection, ErrorReply, Stall, TTSWebsocketFake, WordLog

__all__ = ["ElevenLabsConnectionLog", "ElevenLabsContextLog", "FakeElevenLabsServer", "LIMIT_MESSAGE"]

LIMIT_MESSAGE = (
    "Maximum simultaneous contexts per WebSocket connection exceeded (5). "
    "Please close an existing context before opening a new one."
)
_PATH = re.compile(r"^/v1/text-to-speech/([^/]+)/multi-stream-input$")
_FORMATS = {"ulaw_8000": ("mulaw", 8000), **{f"pcm_{r}": ("l16", r) for r in (8000, 16000, 22050, 24000, 44100)}}
_DEFAULT_SCHEDULE = (120, 160, 250, 290)
_SETTINGS = ("voice_settings", "generation_config", "pronunciation_dictionary_locators")


@dataclass
class ElevenLabsContextLog:
    """One context as the fake saw it."""

    context_id: str
    connection: int
    settings: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    generated: list[str] = field(default_factory=list)
    words: list[WordLog] = field(default_factory=list)
    audio_bytes: int = 0
    flushed: bool = False
    closed: bool = False
    cancelled: bool = False  # closed before its text was flushed: generation stopped
    final: bool = False
    stalled: bool = False  # a Stall fault: accepts input, never answers, never ends
    buffer: str = ""
    schedule_step: int = 0
    cursor_ms: float = 0.0
    queue: asyncio.Queue[str | None] | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class ElevenLabsConnectionLog:
    """One connection: its query, its contexts, the most it ever held at once."""

    number: int
    voice_id: str
    query: dict[str, str]
    encoding: str
    sample_rate: int
    authed: bool
    contexts: dict[str, ElevenLabsContextLog] = field(default_factory=dict)
    peak_active: int = 0
    closing: bool = False
    closed_by: str | None = None  # "inactivity", "max_active_conversations", "close_socket", ...
    last_input_at: float = field(default_factory=time.monotonic)

    @property
    def active(self) -> list[ElevenLabsContextLog]:
        return [c for c in self.contexts.values() if not c.final]


class FakeElevenLabsServer(TTSWebsocketFake):
    """``with FakeElevenLabsServer() as fake:`` then ``ElevenLabsTTSService(base_url=fake.base_url)``.

    ``first_byte_s``: delay before a context's first audio; ``chunk_ms``: audio per message;
    ``realtime``: pace messages at this multiple of real time (0: as fast as possible);
    ``max_contexts``: the per-connection limit; ``inactivity_timeout_s``: overrides the query's
    ``inactivity_timeout`` (default 20 s) so tests can wait less."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        first_byte_s: float = 0.05,
        chunk_ms: float = 40.0,
        realtime: float = 0.0,
        max_contexts: int = 5,
        inactivity_timeout_s: float | None = None,
        voice: SyntheticVoice | None = None,
    ) -> None:
        super().__init__(api_key=api_key, first_byte_s=first_byte_s, chunk_ms=chunk_ms, realtime=realtime, voice=voice)
        self.max_contexts, self.inactivity_timeout_s = max_contexts, inactivity_timeout_s
        self.contexts: dict[str, ElevenLabsContextLog] = {}
        self.conns: dict[int, ElevenLabsConnectionLog] = {}
        self._pending: dict[str, ElevenLabsConnectionLog] = {}  # handshake path -> its log

    @property
    def peak_active(self) -> int:
        """The most contexts any one connection held at once."""
        return max((c.peak_active for c in self.conns.values()), default=0)

    # --- handshake --------------------------------------------------------------------------

    def check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, raw_query = request.path.partition("?")
        match = _PATH.match(path)
        if match is None:
            return connection.respond(404, "not found\n")
        query = {k: v[-1] for k, v in parse_qs(raw_query).items()}
        fmt = query.get("output_format", "mp3_44100_128")
        if fmt not in _FORMATS:
            return connection.respond(400, f"the fake speaks raw formats only, not {fmt}\n")
        key = request.headers.get("xi-api-key")
        bearer = request.headers.get("Authorization", "")
        key = key or (bearer[7:] if bearer.startswith("Bearer ") else None)
        if key is not None and self.api_key is not None and key != self.api_key:
            return connection.respond(401, "invalid API key\n")
        encoding, rate = _FORMATS[fmt]
        authed = self.api_key is None or key is not None
        log = ElevenLabsConnectionLog(0, unquote(match.group(1)), query, encoding, rate, authed)
        connection._fake_log = log  # type: ignore[attr-defined]
        return None

    # --- messages ---------------------------------------------------------------------------

    async def on_message(self, ws: ServerConnection, conn: int, data: Any) -> None:
        log = self._log(ws, conn)
        log.last_input_at = time.monotonic()
        if log.closing:
            return
        if not isinstance(data, dict):
            await self._fatal(ws, log, "Invalid message", "invalid_request")
            return
        if not log.authed:
            key = data.get("xi_api_key") or str(data.get("authorization") or "").removeprefix("Bearer ") or None
            if key != self.api_key:
                await self._fatal(ws, log, "You must be authenticated to use this endpoint.", "auth_error")
                return
            log.authed = True
        if data.get("close_socket") is True:
            log.closing = True
            self.spawn(self._close_socket(ws, log))
            return
        cid = data.get("context_id")
        if cid is None:
            if data.get("text") == "":
                return  # the connection's keep-alive
            cid = "default"
        if not isinstance(cid, str):
            await self._fatal(ws, log, "context_id must be a string", "invalid_request")
            return
        ctx = log.contexts.get(cid)
        if data.get("close_context") is True:
            if ctx is not None and not ctx.closed:
                await self._close_context(ctx)
            return
        if ctx is None or ctx.final:
            if len(log.active) >= self.max_contexts:
                await self._fatal(ws, log, LIMIT_MESSAGE, "max_active_conversations")
                return
            ctx = ElevenLabsContextLog(cid, conn, settings={k: data[k] for k in _SETTINGS if k in data})
            ctx.queue = asyncio.Queue(1000)
            log.contexts[cid] = self.contexts[cid] = ctx
            log.peak_active = max(log.peak_active, len(log.active))
            self.spawn(self._generate(ws, log, ctx))
        elif any(k in data for k in _SETTINGS):
            await self._fatal(ws, log, "voice_settings can only be set in the first message", "invalid_request")
            return
        if ctx.closed:
            return
        text = data.get("text")
        text = text if isinstance(text, str) else ""
        if text.strip():
            fault = self.take_fault()
            if isinstance(fault, DropConnection):
                log.closed_by = "fault"
                await ws.close(1011, "fault")
                return
            if isinstance(fault, ErrorReply):
                await self._fatal(ws, log, fault.message, fault.code)
                return
            if isinstance(fault, Stall):
                ctx.stalled = True
                return
            ctx.inputs.append(text)
            ctx.buffer += text
        if data.get("flush") is True:
            ctx.flushed = True
            self._release(ctx, everything=True)
        elif text.strip():
            self._release(ctx, everything=log.query.get("auto_mode") == "true")

    def _log(self, ws: ServerConnection, conn: int) -> ElevenLabsConnectionLog:
        log = self.conns.get(conn)
        if log is None:
            log = getattr(ws, "_fake_log", None) or ElevenLabsConnectionLog(0, "", {}, "l16", 8000, True)
            log.number = conn
            self.conns[conn] = log
            self.spawn(self._watch_inactivity(ws, log))
        return log

    def _release(self, ctx: ElevenLabsContextLog, *, everything: bool) -> None:
        """Hand buffered text to the generator: all of it, or what the chunk schedule allows."""
        if ctx.queue is None or ctx.stalled:
            return
        if not everything:
            config = ctx.settings.get("generation_config") or {}
            schedule = list(config.get("chunk_length_schedule") or _DEFAULT_SCHEDULE)
            need = schedule[min(ctx.schedule_step, len(schedule) - 1)]
            cut = max((m.end() for m in re.finditer(r"\s", ctx.buffer)), default=0)
            if len(ctx.buffer) < need or not cut:
                return
            text, ctx.buffer = ctx.buffer[:cut], ctx.buffer[cut:]
            ctx.schedule_step += 1
        else:
            text, ctx.buffer = ctx.buffer, ""
        if text.strip():
            ctx.queue.put_nowait(text)

    async def _close_context(self, ctx: ElevenLabsContextLog) -> None:
        ctx.closed = True
        if ctx.stalled:
            return
        if not ctx.flushed:
            ctx.cancelled = True  # not flushed: what is buffered or generating is dropped
            ctx.buffer = ""
        if ctx.queue is not None:
            ctx.queue.put_nowait(None)

    async def _close_socket(self, ws: ServerConnection, log: ElevenLabsConnectionLog) -> None:
        for ctx in log.contexts.values():
            if not ctx.closed:
                await self._close_context(ctx)
        waits = [asyncio.ensure_future(c.ended.wait()) for c in log.active if not c.stalled]
        if waits:  # flushed contexts finish first (bounded)
            await asyncio.wait(waits, timeout=10)
            for w in waits:
                w.cancel()
        log.closed_by = log.closed_by or "close_socket"
        await ws.close(1000, "close_socket")

    async def _fatal(self, ws: ServerConnection, log: ElevenLabsConnectionLog, message: str, error: str) -> None:
        """ElevenLabs' errors: a JSON message, then the connection closed with 1008."""
        log.closing = True
        log.closed_by = log.closed_by or error
        await self.send(ws, {"message": message, "error": error, "code": 1008})
        await ws.close(1008, message[:120])

    async def _watch_inactivity(self, ws: ServerConnection, log: ElevenLabsConnectionLog) -> None:
        limit = self.inactivity_timeout_s or float(log.query.get("inactivity_timeout") or 20)
        while not log.closing:
            idle = time.monotonic() - log.last_input_at
            if idle >= limit:
                text = f"Have not received a new text input within the timeout of {limit:.1f} seconds."
                await self._fatal(ws, log, text, "input_timeout_exceeded")
                return
            await asyncio.sleep(min(0.05, limit - idle))

    # --- generation -------------------------------------------------------------------------

    async def _generate(self, ws: ServerConnection, log: ElevenLabsConnectionLog, ctx: ElevenLabsContextLog) -> None:
        voice = self.voice_at(log.sample_rate)
        assert ctx.queue is not None
        first = True
        while (text := await ctx.queue.get()) is not None:
            if ctx.cancelled:
                continue
            if first:
                first = False
                await asyncio.sleep(self.first_byte_s)
            ctx.generated.append(text)
            await self._speak(ws, log, ctx, voice, text)
        ctx.final = True
        ctx.ended.set()
        await self.send(ws, {"isFinal": True, "contextId": ctx.context_id})

    async def _speak(
        self,
        ws: ServerConnection,
        log: ElevenLabsConnectionLog,
        ctx: ElevenLabsContextLog,
        voice: SyntheticVoice,
        text: str,
    ) -> None:
        spoken = self.render(ctx.cursor_ms, voice, text.strip(), mulaw=log.encoding == "mulaw")
        words, audio, per, width = spoken.words, spoken.audio, spoken.chunk_bytes, spoken.width
        chars = _char_times(text, words, ctx.cursor_ms)
        ctx.words.extend(words)
        start_ms, pieces = ctx.cursor_ms, range(0, len(audio), per)
        ctx.cursor_ms = spoken.end_ms
        for n, i in enumerate(pieces):
            if ctx.cancelled:
                return
            piece = audio[i : i + per]
            t0 = start_ms + i / width * 1000 / voice.sample_rate
            t1 = t0 + len(piece) / width * 1000 / voice.sample_rate
            last = n == len(pieces) - 1
            mine = [c for c in chars if t0 <= c[1] < t1 or (last and c[1] >= t1)]
            message: dict[str, Any] = {"audio": base64.b64encode(piece).decode(), "contextId": ctx.context_id}
            if mine:
                alignment = {
                    "chars": [c[0] for c in mine],
                    "charStartTimesMs": [int(round(c[1] - t0)) for c in mine],
                    "charDurationsMs": [int(round(c[2])) for c in mine],
                }
                message["alignment"] = alignment
                message["normalizedAlignment"] = dict(alignment)
            await self.send(ws, message)
            ctx.audio_bytes += len(piece)
            await self.pace()


def _char_times(text: str, words: list[WordLog], cursor_ms: float) -> list[tuple[str, float, float]]:
    """(char, start ms, duration ms) in the context for every character of ``text``: a word's
    characters share its span evenly; whitespace sits in the gap before the next word."""
    out: list[tuple[str, float, float]] = []
    spans = iter(words)
    prev_end = cursor_ms
    pending_space: list[str] = []
    for match in re.finditer(r"\S+|\s+", text):
        piece = match.group()
        if piece.isspace():
            pending_space.extend(piece)
            continue
        word = next(spans)
        for j, ch in enumerate(pending_space):
            out.append((ch, prev_end, (word.start_ms - prev_end) if j == 0 else 0.0))
        pending_space = []
        each = (word.end_ms - word.start_ms) / len(piece)
        out.extend((ch, word.start_ms + k * each, each) for k, ch in enumerate(piece))
        prev_end = word.end_ms
    out.extend((ch, prev_end, 0.0) for ch in pending_space)
    return out
