"""The ASGI side of ``FakeOpenAIServer``: routing, bodies, faults and pacing. Thin on purpose.

What to send comes from ``openai_script``/``openai_audio`` (sans-I/O); this module decides
when, and how a fault looks on the wire. Raw ASGI rather than a framework, because faults need
byte-level control: a broken stream must end *mid-body* (returning before the final body
message makes uvicorn drop the connection, so the client sees an incomplete chunked body),
and a hang must send no status line at all. Runs on the fake's own loop and thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from phonewire.testing.fakes.openai_audio import MultipartError, parse_multipart, wav_duration_s, wav_header
from phonewire.testing.fakes.openai_script import (
    SSE_DONE,
    BadJSON,
    BrokenStream,
    ChatStream,
    Fault,
    Hang,
    Slow,
    StatusFault,
    StreamError,
    TextReply,
    ToolCallsReply,
    build_chat_completion,
    encode_sse,
    error_body,
    prompt_tokens,
)

if TYPE_CHECKING:
    from phonewire.testing.fakes.openai_server import Endpoint, FakeOpenAIServer, RecordedRequest

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_ROUTES: dict[tuple[str, str], Endpoint] = {
    ("POST", "/v1/chat/completions"): "chat",
    ("POST", "/v1/audio/speech"): "speech",
    ("POST", "/v1/audio/transcriptions"): "transcriptions",
    ("GET", "/v1/models"): "models",
}
_SPEECH_TYPES = {"pcm": "audio/pcm", "wav": "audio/wav"}


class _Aborted(Exception):
    """The client went away or the fake is stopping: stop answering."""


class OpenAIApp:
    """One instance per server; one ``_Exchange`` per request."""

    def __init__(self, fake: FakeOpenAIServer) -> None:
        self.fake = fake
        self.aborts: set[asyncio.Event] = set()
        self.stopping = False
        self.streams = 0
        self._ids = itertools.count(1)

    def abort_all(self) -> None:
        """Called on the fake's loop by ``stop()``: release hangs and pacing waits at once."""
        self.stopping = True
        for event in self.aborts:
            event.set()

    def next_id(self) -> int:
        return next(self._ids)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await _Exchange(self, scope, receive, send).run()
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})


class _Exchange:
    def __init__(self, app: OpenAIApp, scope: Scope, receive: Receive, send: Send) -> None:
        self.app, self.fake, self.scope, self._receive, self._send = app, app.fake, scope, receive, send
        self.abort = asyncio.Event()
        self.record: RecordedRequest | None = None
        self.started = False
        self.arrived_at = time.monotonic()
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}

    # --- plumbing ---------------------------------------------------------------------------

    async def run(self) -> None:
        from phonewire.testing.fakes.openai_server import RecordedRequest

        method, path = self.scope["method"], self.scope["path"].rstrip("/")
        endpoint: Endpoint = _ROUTES.get((method, path), "other")
        if method == "GET" and path.startswith("/v1/models/"):
            endpoint = "models"
        auth = self.headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        headers = dict(self.headers)
        if "authorization" in headers:
            headers["authorization"] = f"Bearer ...{key[-4:]}" if key else "<redacted>"
        self.record = RecordedRequest(
            index=-1, endpoint=endpoint, method=method, path=path, headers=headers,
            has_auth=bool(key), api_key_last4=key[-4:] if key else None, arrived_at=self.arrived_at,
        )  # fmt: skip
        self.app.aborts.add(self.abort)
        if self.app.stopping:
            self.abort.set()
        watcher: asyncio.Task[None] | None = None
        try:
            handler = getattr(self, f"_{endpoint}")
            body = await self._read_body(
                self.fake.max_upload_bytes if endpoint == "transcriptions" else self.fake.max_body_bytes
            )
            if body is None:
                return
            watcher = asyncio.create_task(self._watch_disconnect())
            if self.fake.require_auth and not key and endpoint != "other":
                self._store(body, endpoint)
                await self._error(401, "You didn't provide an API key.", code=None)
                return
            await handler(body)
        except _Aborted:
            pass
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            self.app.aborts.discard(self.abort)
            if self.record.index < 0:
                self.fake._record(self.record)
            self.record.completed_at = time.monotonic()
            self.fake._notify()

    def _store(self, body: bytes, endpoint: Endpoint) -> Any:
        """Record the request (once) with its JSON body if it has one; returns the JSON or None."""
        assert self.record is not None
        data: Any = None
        if endpoint in ("chat", "speech") and body:
            with contextlib.suppress(ValueError):
                data = json.loads(body)
        if self.record.index < 0:
            self.record.json = data
            self.fake._record(self.record)
        return data

    async def _read_body(self, cap: int) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                self.fake._record(self.record)  # type: ignore[arg-type]
                await self._error(413, f"Request body exceeds the fake's limit of {cap} bytes.")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _watch_disconnect(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            continue
        assert self.record is not None
        self.record.disconnected = True
        self.abort.set()

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``; raise ``_Aborted`` if the client leaves or the fake stops first."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self.abort.wait()
        if self.abort.is_set():
            raise _Aborted

    async def _start(self, status: int, content_type: str, extra: dict[str, str] | None = None) -> None:
        assert self.record is not None
        headers = {"content-type": content_type, "x-request-id": f"req_fake_{self.record.index}", **(extra or {})}
        await self._send({"type": "http.response.start", "status": status,
                          "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})  # fmt: skip
        self.record.status = status
        self.started = True

    async def _body(self, data: bytes, more: bool) -> None:
        assert self.record is not None
        if self.abort.is_set():
            raise _Aborted
        if data and self.record.first_byte_at is None:
            self.record.first_byte_at = time.monotonic()
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        assert self.record is not None
        self.record.response_json = obj
        await self._start(status, "application/json", headers)
        await self._body(json.dumps(obj).encode(), more=False)

    async def _error(self, status: int, message: str | None = None, **kw: Any) -> None:
        await self._json(status, error_body(status, message, **kw))

    async def _common_fault(self, fault: Fault) -> bool:
        """Answer a status or hang fault; True if the request has been answered."""
        assert self.record is not None
        self.record.fault = type(fault).__name__
        if isinstance(fault, StatusFault):
            headers = dict(fault.headers)
            if fault.retry_after_s is not None:
                headers["retry-after"] = str(math.ceil(fault.retry_after_s))
                headers["retry-after-ms"] = str(int(fault.retry_after_s * 1000))
            body = error_body(fault.status, fault.message, type=fault.type, code=fault.code, param=fault.param)
            await self._json(fault.status, body, headers)
            return True
        if isinstance(fault, Hang):
            await self._pause(fault.max_s)  # _Aborted on disconnect/stop: no response at all
            await self._error(503, f"The fake hung for its maximum of {fault.max_s} s.")
            return True
        return False

    async def _cut(self, data: bytes) -> None:
        """Send part of a fixed-length body and drop the connection (returning mid-body)."""
        await self._start(200, "application/json", {"content-length": str(len(data))})
        await self._body(data[: len(data) // 2], more=True)
        raise _Aborted

    # --- endpoints --------------------------------------------------------------------------

    async def _other(self, body: bytes) -> None:
        self._store(body, "other")
        await self._error(404, f"Invalid URL ({self.scope['method']} {self.scope['path']})", code=None)

    async def _models(self, body: bytes) -> None:
        self._store(body, "models")
        assert self.record is not None
        listed = [
            {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "phonewire-fake"}
            for m in self.fake.models
        ]
        if self.record.path == "/v1/models":
            await self._json(200, {"object": "list", "data": listed})
            return
        wanted = self.record.path.removeprefix("/v1/models/")
        found = [m for m in listed if m["id"] == wanted]
        if found:
            await self._json(200, found[0])
        else:
            await self._error(404, f"The model '{wanted}' does not exist", code="model_not_found", param="model")

    async def _chat(self, body: bytes) -> None:
        data = self._store(body, "chat")
        if not isinstance(data, dict):
            await self._error(400, "We could not parse the JSON body of your request.")
            return
        if not isinstance(data.get("model"), str):
            await self._error(400, "you must provide a model parameter", param="model")
            return
        if not isinstance(data.get("messages"), list) or not data["messages"]:
            await self._error(400, "'messages' must be a non-empty array", param="messages", code="invalid_value")
            return
        item = self.fake._next_chat(data)
        if isinstance(item, Slow):
            assert self.record is not None
            self.record.fault = "Slow"
            await self._pause(item.delay_s)
            item = item.reply or self.fake._next_chat(data, faults=False)
        if isinstance(item, StatusFault | Hang | Slow) and await self._common_fault(item):
            return
        fault = item if isinstance(item, BrokenStream | BadJSON | StreamError) else None
        if fault is not None:
            assert self.record is not None
            self.record.fault = type(fault).__name__
        reply = (
            item if isinstance(item, TextReply | ToolCallsReply) else (fault and fault.reply) or self.fake.default_reply
        )
        seq = self.app.next_id()
        completion_id, created, model = f"chatcmpl-fake{seq:08d}", int(time.time()), data["model"]
        tokens = prompt_tokens(data)
        if not data.get("stream"):
            if isinstance(fault, StreamError):
                await self._error(500, fault.message, type=fault.type, code=fault.code)
            elif isinstance(fault, BadJSON):
                await self._start(200, "application/json")
                await self._body(fault.payload.encode(), more=False)
            else:
                completion = build_chat_completion(
                    reply, completion_id=completion_id, model=model, created=created, prompt_tokens=tokens
                )
                if isinstance(fault, BrokenStream):
                    await self._cut(json.dumps(completion).encode())
                await self._json(200, completion)
            return
        await self._stream_chat(data, reply, fault, ChatStream(
            reply, completion_id, model, created,
            include_usage=bool((data.get("stream_options") or {}).get("include_usage")),
            include_obfuscation=(data.get("stream_options") or {}).get("include_obfuscation", True) is not False,
            prompt_tokens=tokens,
        ))  # fmt: skip

    async def _stream_chat(self, data: dict[str, Any], reply: Any, fault: Fault | None, stream: ChatStream) -> None:
        assert self.record is not None
        events = [json.dumps(chunk) for chunk in stream.chunks()]
        cut: int | None = None
        if isinstance(fault, BrokenStream):
            cut = fault.after_chunks
        elif isinstance(fault, BadJSON):
            events = [*events[: fault.after_chunks], fault.payload]
        elif isinstance(fault, StreamError):
            error = {"error": {"message": fault.message, "type": fault.type, "param": None, "code": fault.code}}
            events = [*events[: fault.after_chunks], json.dumps(error)]
        if self.app.streams >= self.fake.max_concurrent_streams:
            await self._error(503, "Too many concurrent streams on the fake.")
            return
        self.app.streams += 1
        try:
            await self._start(200, "text/event-stream; charset=utf-8", {"cache-control": "no-cache"})
            latency = self.fake.chat_latency
            for i, event in enumerate(events):
                if cut is not None and i >= cut:
                    break
                await self._pause(latency.first_token_s if i == 0 else latency.per_token_s)
                await self._body(encode_sse(event), more=True)
                self.record.sse_events.append(event)
                self.record.event_times.append(time.monotonic())
            if cut is not None and not (isinstance(fault, BrokenStream) and fault.clean):
                raise _Aborted  # returning mid-body: uvicorn drops the connection
            if cut is None and not isinstance(fault, StreamError):
                await self._body(encode_sse(SSE_DONE), more=True)
                self.record.sse_events.append(SSE_DONE)
                self.record.event_times.append(time.monotonic())
            await self._body(b"", more=False)
        finally:
            self.app.streams -= 1

    async def _speech(self, body: bytes) -> None:
        data = self._store(body, "speech")
        if not isinstance(data, dict):
            await self._error(400, "We could not parse the JSON body of your request.")
            return
        fault = self.fake._take_fault("speech")
        if isinstance(fault, Slow):
            await self._pause(fault.delay_s)
            fault = None
        if fault is not None and await self._common_fault(fault):
            return
        text, fmt, speed = data.get("input"), data.get("response_format", "mp3"), data.get("speed", 1.0)
        problem = (
            ("model", "model is required") if not isinstance(data.get("model"), str)
            else ("voice", "voice is required") if not data.get("voice")
            else ("input", "input must be a non-empty string of at most 4096 characters")
            if not isinstance(text, str) or not text.strip() or len(text) > 4096
            else ("response_format", f"the fake serves 'pcm' and 'wav', not {fmt!r}") if fmt not in _SPEECH_TYPES
            else ("stream_format", "the fake serves stream_format 'audio' only")
            if data.get("stream_format", "audio") != "audio"
            else ("speed", "speed must be between 0.25 and 4.0")
            if not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0
            else None
        )  # fmt: skip
        if problem is not None:
            await self._error(400, problem[1], param=problem[0])
            return
        assert isinstance(text, str)
        audio = self.fake.voice.synthesize(text, float(speed))
        if fmt == "wav":
            audio = wav_header(len(audio), self.fake.voice.sample_rate) + audio
        latency = self.fake.speech_latency
        await self._pause(latency.first_byte_s)
        await self._start(200, _SPEECH_TYPES[fmt])
        assert self.record is not None
        loop = asyncio.get_running_loop()
        t0, size = loop.time(), max(2, latency.chunk_bytes)
        for n, offset in enumerate(range(0, len(audio), size)):
            if isinstance(fault, BrokenStream) and n >= fault.after_chunks:
                if fault.clean:
                    break
                raise _Aborted
            await self._pause(t0 + latency.chunk_interval_s(offset, self.fake.voice.sample_rate) - loop.time())
            chunk = audio[offset : offset + size]
            await self._body(chunk, more=True)
            self.record.audio_bytes_sent += len(chunk)
        await self._body(b"", more=False)

    async def _transcriptions(self, body: bytes) -> None:
        assert self.record is not None
        try:
            fields, files = parse_multipart(body, self.headers.get("content-type", ""))
        except MultipartError as exc:
            self._store(body, "transcriptions")
            await self._error(400, f"Could not parse multipart form: {exc}")
            return
        upload = files.get("file")
        self.record.form = fields
        self.record.audio = upload.data if upload else None
        self.record.audio_filename = upload.filename if upload else None
        self._store(body, "transcriptions")
        if upload is None or "model" not in fields:
            param = "file" if upload is None else "model"
            await self._error(400, f"you must provide a {param} parameter", param=param)
            return
        item = self.fake._next_transcript(upload.data, fields)
        if isinstance(item, Slow):
            self.record.fault = "Slow"
            await self._pause(item.delay_s)
            item = self.fake._next_transcript(upload.data, fields, faults=False)
        if not isinstance(item, str):
            if await self._common_fault(item):
                return
            if isinstance(item, BrokenStream):
                await self._cut(json.dumps({"text": "cut short"}).encode())
            item = self.fake.default_transcript
        await self._pause(self.fake.transcription_latency_s)
        fmt = fields.get("response_format", "json")
        duration = wav_duration_s(upload.data) or len(upload.data) / 32000
        if fmt == "text":
            await self._start(200, "text/plain; charset=utf-8")
            await self._body(item.encode(), more=False)
        elif fmt == "json":
            await self._json(200, {"text": item, "usage": {"type": "duration", "seconds": round(duration, 3)}})
        elif fmt == "verbose_json":
            await self._json(200, _verbose(item, duration, fields.get("language") or "english"))
        else:
            await self._error(400, f"the fake serves json, text and verbose_json, not {fmt!r}", param="response_format")


def _verbose(text: str, duration: float, language: str) -> dict[str, Any]:
    """``TranscriptionVerbose``: words spread evenly over the audio, one segment."""
    words = text.split()
    step = duration / len(words) if words else 0.0
    segment = {
        "id": 0,
        "seek": 0,
        "start": 0.0,
        "end": round(duration, 3),
        "text": text,
        "tokens": list(range(len(words))),
        "temperature": 0.0,
        "avg_logprob": -0.1,
        "compression_ratio": 1.0,
        "no_speech_prob": 0.01,
    }
    return {
        "duration": round(duration, 3),
        "language": language,
        "text": text,
        "words": [
            {"word": w, "start": round(i * step, 3), "end": round((i + 1) * step, 3)} for i, w in enumerate(words)
        ],
        "segments": [segment] if words else [],
        "usage": {"type": "duration", "seconds": round(duration, 3)},
    }
