"""One reply of a WebsocketTTSService, and the speaker task that turns its events into frames.

Why a speaker task: frames must leave the service in order (the reply's audio and words
before the frames queued after it, TTSStoppedFrame before the LLMFullResponseEndFrame), while
audio arrives on the socket's receive task. The receive task only routes each event to its
reply (by context id: a cancelled context's late audio finds no reply and is dropped); the
speaker pushes the current reply's events downstream and then the frames that queued behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from phonewire.frames import (
    EndFrame,
    Frame,
    LatencyStageFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSWireAudioFrame,
    UninterruptibleFrame,
)
from phonewire.services.websocket_tts_protocol import (
    AudioChunk,
    ContextDone,
    ProtocolEvent,
    ServiceError,
    WordBuffer,
    WordTimes,
    audio_ms,
)

if TYPE_CHECKING:
    from phonewire.services.websocket_tts import WebsocketTTSService

__all__ = ["Reply", "Segment", "Speaker"]

logger = logging.getLogger("phonewire.services.tts")

#: Events waiting for the speaker, per reply (backpressure on the socket beyond it).
MAX_REPLY_EVENTS = 1024
_WAKE = object()  # marker: the reply's state changed (flushed, failed)


@dataclass(slots=True, eq=False)
class Segment:
    """One context at the service. A reply has one, or more when Cartesia's expiry forced a
    fresh context mid-reply; ``offset_ms`` is where its audio starts in the utterance."""

    context_id: str
    reply: Reply
    offset_ms: float | None = None
    audio_ms: float = 0.0
    last_audio_at: float = 0.0
    last_activity: float = 0.0
    done: bool = False
    carry: bytes = b""


@dataclass(slots=True, eq=False)
class Reply:
    """One utterance: its contexts, what was pushed, how it ends."""

    reply_id: str
    words: WordBuffer
    generation: int
    segments: list[Segment] = field(default_factory=list)
    events: asyncio.Queue[object] = field(default_factory=lambda: asyncio.Queue(MAX_REPLY_EVENTS))
    end_frame: Frame | None = None
    append_to_context: bool = True
    flushed: bool = False
    failure: ServiceError | None = None
    apologized: bool = False
    started: bool = False
    audio_started: bool = False
    ttfb_started: bool = False
    said_words: int = 0
    audio_ms: float = 0.0

    @property
    def current(self) -> Segment | None:
        return self.segments[-1] if self.segments else None

    @property
    def failed(self) -> bool:
        return self.failure is not None

    @property
    def complete(self) -> bool:
        # ``done`` is set on the receive task while the reply's events may still be queued:
        # complete only once the speaker has taken them all.
        return self.flushed and (self.failed or (all(s.done for s in self.segments) and self.events.empty()))

    def add_segment(self, context_id: str) -> Segment:
        segment = Segment(context_id, self, last_activity=time.monotonic())
        self.segments.append(segment)
        return segment

    def fail(self, error: ServiceError) -> None:
        if self.failure is None:
            self.failure = error
            self._wake()

    def mark_flushed(self) -> None:
        self.flushed = True
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a full queue wakes the speaker anyway
            self.events.put_nowait(_WAKE)


class Speaker:
    """The task that pushes replies' frames in order. ``generation`` guards every push."""

    def __init__(self, service: WebsocketTTSService) -> None:
        self.svc = service
        self.generation = 0
        self.current: Reply | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self.svc.name}:speaker")

    async def stop(self) -> Reply | None:
        """Retire the task (an interruption); returns the reply it was playing."""
        self.generation += 1
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        current, self.current = self.current, None
        return current

    def drain_items(self) -> list[Frame | Reply]:
        """Empty the service's queue, keeping uninterruptible frames; returns what was dropped."""
        items = self.svc._items
        dropped: list[Frame | Reply] = []
        kept: list[Frame | Reply] = []
        while not items.empty():
            item = items.get_nowait()
            (kept if isinstance(item, UninterruptibleFrame) else dropped).append(item)
        for item in kept:
            items.put_nowait(item)
        return dropped

    # --- routing (the receive task) ---------------------------------------------------------

    async def dispatch(self, event: ProtocolEvent) -> None:
        svc = self.svc
        if event.context_id is None:  # about the connection: every open reply fails
            for reply in {id(s.reply): s.reply for s in svc._contexts.values()}.values():
                reply.fail(event)
            return
        segment = svc._contexts.get(event.context_id)
        if segment is None or segment.reply.generation != self.generation:
            svc.stale_messages += 1
            if isinstance(event, ContextDone | ServiceError):
                svc.retired(event.context_id)  # a cancelled context's slot is free now
            return
        if isinstance(event, AudioChunk):
            segment.last_audio_at = time.monotonic()
        elif isinstance(event, ContextDone):
            segment.done = True
            await svc.finish_context(segment)
        elif isinstance(event, ServiceError):
            segment.done = True
            svc._release(segment.context_id)
            segment.reply.fail(event)
            return
        await segment.reply.events.put(event)

    # --- pushing (the speaker task) -----------------------------------------------------------

    async def _run(self) -> None:
        me = asyncio.current_task()
        while self._task is me:
            item = await self.svc._items.get()
            if isinstance(item, Reply):
                self.current = item
                await self._play(item)
                self.current = None
                continue
            if isinstance(item, EndFrame):
                await self.svc.stop_at_end(item)
            await self.svc.push_frame(item)

    async def _play(self, reply: Reply) -> None:
        svc = self.svc
        while True:
            if reply.failure is not None and not reply.apologized:
                await self._fail(reply)
            if reply.complete:
                break
            timeout = None
            if reply.flushed and not reply.failed:
                timeout = svc.stall_timeout_secs if reply.audio_started else svc.first_byte_timeout_secs
            try:
                async with asyncio.timeout(timeout):
                    event = await reply.events.get()
            except TimeoutError:
                what = "audio stalled" if reply.audio_started else "no audio"
                reply.fail(ServiceError(None, f"{what} for {timeout}s after the text was flushed"))
                continue
            if event is _WAKE or reply.failed or reply.generation != self.generation:
                continue
            if isinstance(event, AudioChunk):
                await self._audio(reply, event)
            elif isinstance(event, WordTimes):
                await self._words(reply, event)
        if reply.started:
            await svc.push_frame(TTSStoppedFrame())
        if reply.end_frame is not None:
            await svc.push_frame(reply.end_frame)

    async def _begin(self, reply: Reply) -> None:
        if not reply.started:
            reply.started = True
            await self.svc.push_frame(TTSStartedFrame())

    def _segment(self, reply: Reply, context_id: str) -> Segment:
        segment = next(s for s in reply.segments if s.context_id == context_id)
        if segment.offset_ms is None:
            segment.offset_ms = reply.audio_ms  # earlier contexts of the reply are all played out
        return segment

    async def _audio(self, reply: Reply, event: AudioChunk) -> None:
        svc = self.svc
        protocol = svc.protocol
        assert protocol is not None
        segment = self._segment(reply, event.context_id)
        data = segment.carry + event.audio
        if protocol.encoding == "l16" and len(data) % 2:
            data, segment.carry = data[:-1], data[-1:]
        else:
            segment.carry = b""
        if not data:
            return
        await self._begin(reply)
        if not reply.audio_started:
            reply.audio_started = True
            await svc.stop_ttfb_metrics()
            await svc.push_frame(LatencyStageFrame(stage="tts_first_byte", at=time.monotonic(), processor=svc.name))
        ms = audio_ms(len(data), protocol.encoding, protocol.sample_rate)
        segment.audio_ms += ms
        reply.audio_ms += ms
        rate = protocol.sample_rate
        if protocol.encoding == "mulaw":
            frame: TTSAudioRawFrame = TTSWireAudioFrame(audio=data, sample_rate=rate, context_id=reply.reply_id)
        else:
            frame = TTSAudioRawFrame(audio=data, sample_rate=rate, context_id=reply.reply_id)
        await svc.push_frame(frame)

    async def _words(self, reply: Reply, event: WordTimes) -> None:
        segment = self._segment(reply, event.context_id)
        await self._begin(reply)
        offset = segment.offset_ms or 0.0
        for word, start_ms in event.words:
            text = word if reply.said_words == 0 else " " + word
            reply.said_words += 1
            frame = TTSTextFrame(text=text, context_id=reply.reply_id, pts_ms=offset + start_ms)
            if not reply.append_to_context:
                frame.metadata = {"append_to_context": False}
            await self.svc.push_frame(frame)

    async def _fail(self, reply: Reply) -> None:
        svc = self.svc
        reply.apologized = True
        svc.error_count += 1
        error = reply.failure
        assert error is not None
        logger.warning("! %s: speech failed: %s", svc.name, error.message)
        await svc.push_error(f"{svc.name}: speech synthesis failed: {error.message}")
        for segment in reply.segments:
            if segment.context_id in svc._contexts:
                svc._retire(segment.context_id)
                if svc.protocol is not None and svc._ws is not None:
                    await svc._send(svc.protocol.cancel(segment.context_id))
            segment.done = True
        apology = svc.apology
        if apology is None:
            return
        await self._begin(reply)
        for chunk in apology.chunks():
            reply.audio_ms += audio_ms(len(chunk), "l16", apology.sample_rate)
            await svc.push_frame(
                TTSAudioRawFrame(audio=chunk, sample_rate=apology.sample_rate, context_id=reply.reply_id)
            )
