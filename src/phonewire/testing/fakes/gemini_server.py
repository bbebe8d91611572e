"""``FakeGeminiLiveServer``: a real WebSocket server on 127.0.0.1 speaking Gemini Live
(``BidiGenerateContent``), on its own thread like the other fakes.

Per connection: ``setup`` -> ``setupComplete``; ``realtimeInput`` audio (PCM16, rate from the
mime type) through a toy energy VAD; at the end of the caller's speech an
``inputTranscription``, then the next scripted reply as ``modelTurn`` audio (synthetic speech,
PCM16 24 kHz, ``chunk_ms`` per message at ``speed`` x real time) with ``outputTranscription``
and ``turnComplete``, or a ``toolCall`` answered by the client's ``toolResponse``. Caller speech
during a model turn stops it with ``serverContent.interrupted`` (automatic activity detection,
START_OF_ACTIVITY_INTERRUPTS). Every message both ways is recorded.

Session resumption: a setup with ``sessionResumption`` gets ``sessionResumptionUpdate``s
(resumable with a ``newHandle`` after ``setupComplete`` and after each ``turnComplete``;
``resumable: false`` while a turn is generated or a tool call is open). A setup naming a handle
this fake issued resumes that session (``GeminiSession.resumed_from``); an unknown handle, or
any handle with ``refuse_resume=True``, is closed with 1008. ``go_away_after_s``: each
connection gets ``goAway`` (``timeLeft`` = ``go_away_time_left_s``) that long after its setup
and is closed (1011) when the time is up; ``drop_after_s``: the first connection is dropped
without a word (an unexpected close). The script and transcripts are the fake's, so a resumed
session carries on with the next reply.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, serve

from phonewire.testing.fakes.openai_audio import SyntheticVoice
from phonewire.testing.fakes.realtime_session import RealtimeReply

__all__ = ["FakeGeminiLiveServer", "GeminiSession"]

PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
SPEECH_RMS = 500.0


@dataclass
class GeminiSession:
    path: str
    api_key: str | None
    received: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    interrupted_turns: int = 0
    #: the handle this connection's setup resumed (None: a new session)
    resumed_from: str | None = None
    #: handles sent to it (``sessionResumptionUpdate.newHandle``)
    handles: list[str] = field(default_factory=list)
    go_away_sent: bool = False
    closed_code: int | None = None  # what the fake closed it with (None: the client closed)


class FakeGeminiLiveServer:
    """``with FakeGeminiLiveServer(replies=[...]) as fake:``; ``base_url`` for ``GEMINI_BASE_URL``."""

    def __init__(
        self,
        *,
        replies: list[RealtimeReply | str] | tuple[RealtimeReply | str, ...] = (),
        transcripts: list[str] | tuple[str, ...] = (),
        speed: float = 4.0,
        chunk_ms: int = 100,
        go_away_after_s: float | None = None,
        go_away_time_left_s: float = 5.0,
        drop_after_s: float | None = None,
        refuse_resume: bool = False,
    ) -> None:
        self._script = collections.deque(RealtimeReply(r) if isinstance(r, str) else r for r in replies)
        self.transcripts = list(transcripts)
        self.speed, self.chunk_ms = speed, chunk_ms
        self.go_away_after_s, self.go_away_time_left_s = go_away_after_s, go_away_time_left_s
        self.drop_after_s, self.refuse_resume = drop_after_s, refuse_resume
        self.issued: set[str] = set()  # every handle sent, on any connection
        self._handles = itertools.count(1)
        self._dropped = False
        self.voice = SyntheticVoice(sample_rate=24000)
        self.sessions: list[GeminiSession] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> None:
        ready = threading.Event()

        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            async with serve(self._serve, "127.0.0.1", 0, max_size=16 << 20) as server:
                self._port = int(next(iter(server.sockets)).getsockname()[1])
                ready.set()
                await self._stop.wait()

        self._thread = threading.Thread(target=lambda: asyncio.run(main()), name="FakeGeminiLive", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("FakeGeminiLiveServer did not start")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> FakeGeminiLiveServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self, ws: ServerConnection) -> None:
        request = ws.request
        if request is None or request.path != PATH:
            await ws.close(1008, "unknown path")
            return
        session = GeminiSession(request.path, request.headers.get("x-goog-api-key"))
        self.sessions.append(session)
        await _Conversation(self, ws, session).run()


class _Conversation:
    def __init__(self, fake: FakeGeminiLiveServer, ws: ServerConnection, session: GeminiSession) -> None:
        self.fake, self.ws, self.session = fake, ws, session
        self.turn: asyncio.Task[None] | None = None
        self.timer: asyncio.Task[None] | None = None
        self.resumption = False  # the setup asked for sessionResumptionUpdate
        self.speaking = False
        self.speech_ms = self.silence_ms = 0.0
        #: The server's own estimate of when the caller finishes hearing the turn (start + its
        #: audio's duration): speech before then interrupts it, even once all audio was sent.
        self.playing_until = 0.0

    async def send(self, obj: dict[str, Any]) -> None:
        self.session.sent.append(obj)
        await self.ws.send(json.dumps(obj))

    async def run(self) -> None:
        try:
            async for message in self.ws:
                obj = json.loads(message)
                self.session.received.append(obj)
                if "setup" in obj:
                    if not await self._setup(obj["setup"]):
                        return
                elif "realtimeInput" in obj:
                    await self._audio(obj["realtimeInput"].get("audio") or {})
                elif "toolResponse" in obj:
                    self._start_turn()
        except Exception:  # a closed socket ends the session
            pass
        finally:
            for task in (self.turn, self.timer):
                if task is not None:
                    task.cancel()
            await asyncio.gather(*(t for t in (self.turn, self.timer) if t is not None), return_exceptions=True)

    async def _setup(self, setup: dict[str, Any]) -> bool:
        resumption = setup.get("sessionResumption")
        self.resumption = isinstance(resumption, dict)
        handle = resumption.get("handle") if isinstance(resumption, dict) else None
        if handle is not None:
            if self.fake.refuse_resume or handle not in self.fake.issued:
                await self.close(1008, "session resumption handle not found")
                return False
            self.session.resumed_from = handle
        await self.send({"setupComplete": {}})
        await self.update(resumable=True)
        fake = self.fake
        if fake.drop_after_s is not None and not fake._dropped:
            fake._dropped = True
            self.timer = asyncio.get_running_loop().create_task(self._drop(fake.drop_after_s))
        elif fake.go_away_after_s is not None:
            self.timer = asyncio.get_running_loop().create_task(self._go_away(fake.go_away_after_s))
        return True

    async def update(self, *, resumable: bool) -> None:
        if not self.resumption:
            return
        if not resumable:  # mid-generation or a tool call: no handle now (the SDK's types say so)
            await self.send({"sessionResumptionUpdate": {"newHandle": "", "resumable": False}})
            return
        handle = f"handle-{next(self.fake._handles)}"
        self.fake.issued.add(handle)
        self.session.handles.append(handle)
        await self.send({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})

    async def close(self, code: int, reason: str) -> None:
        self.session.closed_code = code
        await self.ws.close(code, reason)

    async def _go_away(self, after: float) -> None:
        await asyncio.sleep(after)
        left = self.fake.go_away_time_left_s
        self.session.go_away_sent = True
        await self.send({"goAway": {"timeLeft": f"{left:g}s"}})
        await asyncio.sleep(left)
        await self.close(1011, "session time is up")

    async def _drop(self, after: float) -> None:
        await asyncio.sleep(after)
        self.session.closed_code = 1006
        self.ws.transport.abort()  # no close frame: what a dropped network looks like

    async def _audio(self, audio: dict[str, Any]) -> None:
        pcm = np.frombuffer(base64.b64decode(audio.get("data") or ""), dtype="<i2").astype(np.float64)
        rate = int(str(audio.get("mimeType", "rate=16000")).rsplit("=", 1)[-1])
        ms = len(pcm) * 1000 / rate
        loud = pcm.size > 0 and float(np.sqrt(np.mean(pcm**2))) > SPEECH_RMS
        if loud:
            self.speech_ms += ms
            self.silence_ms = 0.0
            if not self.speaking and self.speech_ms >= 60:
                self.speaking = True
                if self.turn is not None and (not self.turn.done() or time.monotonic() < self.playing_until):
                    self.turn.cancel()
                    self.playing_until = 0.0
                    self.session.interrupted_turns += 1
                    await self.send({"serverContent": {"interrupted": True}})
                    await self.update(resumable=True)
            return
        self.silence_ms += ms
        if not self.speaking:
            self.speech_ms = 0.0
        elif self.silence_ms >= 500:
            self.speaking, self.speech_ms = False, 0.0
            text = self.fake.transcripts.pop(0) if self.fake.transcripts else "hello"
            await self.send({"serverContent": {"inputTranscription": {"text": text, "finished": True}}})
            self._start_turn()

    def _start_turn(self) -> None:
        reply = self.fake._script.popleft() if self.fake._script else RealtimeReply("OK.")
        self.turn = asyncio.get_running_loop().create_task(self._speak(reply))

    async def _speak(self, reply: RealtimeReply) -> None:
        await self.update(resumable=False)
        if reply.tool_calls:
            calls = [{"id": f"fc_{i}", "name": c.name, "args": c.arguments} for i, c in enumerate(reply.tool_calls)]
            await self.send({"toolCall": {"functionCalls": calls}})
            return
        pcm = self.fake.voice.synthesize(reply.text)
        self.playing_until = time.monotonic() + len(pcm) / 48000
        size = 48 * self.fake.chunk_ms
        chunks = [pcm[i : i + size] for i in range(0, len(pcm), size)]
        words = reply.text.split()
        per = max(1, -(-len(words) // max(1, len(chunks))))
        for i, chunk in enumerate(chunks):
            part = {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": base64.b64encode(chunk).decode()}}
            content: dict[str, Any] = {"modelTurn": {"parts": [part]}}
            piece = " ".join(words[i * per : (i + 1) * per])
            if piece:
                content["outputTranscription"] = {"text": piece + " "}
            await self.send({"serverContent": content})
            await asyncio.sleep(self.fake.chunk_ms / 1000 / self.fake.speed)
        await self.send({"serverContent": {"generationComplete": True, "turnComplete": True}})
        await self.update(resumable=True)
