"""WebsocketTTSService: LLM tokens in over one persistent WebSocket, audio and word timing out.

Pipecat's name (its ``WebsocketTTSService`` / ``AudioContextWordTTSService`` pair, in one
class). For services that take text token by token and answer with audio plus word
timestamps, keyed by a *context* per reply (Cartesia, ElevenLabs multi-context):

* The socket is opened at the StartFrame, in the background, so it is up before the caller's
  first word; a dropped socket is reopened (bounded attempts) for the next reply.
* One context per reply (``LLMFullResponseStartFrame`` .. ``End``). ``LLMTextFrame``s are sent
  as they arrive, cut to whole words (``WordBuffer``); the End flushes the context.
* Downstream, per reply and in order: TTSStartedFrame, the audio (``TTSWireAudioFrame`` when
  the service speaks G.711, so the wire gets it untouched), one ``TTSTextFrame(word,
  pts_ms=start)`` per word from the service's own timestamps (so ``heard_text`` is exact to
  the word), TTSStoppedFrame, then the End frame. ``LatencyStageFrame("tts_first_byte")`` and
  TTFB metrics mark the first audio.
* ``InterruptionFrame``: the reply's contexts are cancelled at the service and forgotten;
  their late audio is dropped by context id (``stale_messages``).
* Failures (an error message, a lost socket, no audio within ``first_byte_timeout_secs`` of
  the flush, ``stall_timeout_secs`` between chunks): ``ErrorFrame`` upstream, ``error_count``,
  the recorded apology instead of the rest of the reply; the next reply uses a new context.
* ``max_contexts``: a new context waits (bounded) for a slot; finished ones are closed. With
  ``cancel_holds_slot`` a cancelled context keeps its slot until the service reports it done
  (or ``context_close_timeout_secs`` passes), so the service's own count is never exceeded.
* ``context_expiry_secs`` (Cartesia's 1 s): text arriving for a context that has been idle
  nearly that long goes to a fresh context, whose audio continues the same utterance.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from phonewire.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    FrameDirection,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    StartFrame,
    SystemFrame,
    TextFrame,
    TTSSpeakFrame,
)
from phonewire.processors.frame_processor import FrameProcessor
from phonewire.services.apology import ApologyAudio, default_apology
from phonewire.services.websocket_tts_protocol import ServiceError, TTSProtocol, WordBuffer
from phonewire.services.websocket_tts_reply import Reply, Segment, Speaker

__all__ = ["WebsocketTTSService"]

logger = logging.getLogger("phonewire.services.tts")

DOWNSTREAM = FrameDirection.DOWNSTREAM
#: Frames and replies waiting for the speaker.
MAX_PENDING_ITEMS = 256
#: Largest message accepted from the service (base64 audio chunks are large).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_ids = itertools.count(1)
_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "xi-api-key", "api-key"})


class _RedactCredentials(logging.Filter):
    """websockets logs every handshake header at DEBUG: keep the credentials out."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 2 and str(args[0]).lower() in _SECRET_HEADERS:
            record.args = (args[0], "<redacted>")
        return True


#: The websockets client's logger for these connections (its DEBUG handshake log redacted).
wire_logger = logging.getLogger("phonewire.services.tts.wire")
wire_logger.addFilter(_RedactCredentials())


class WebsocketTTSService(FrameProcessor):
    """Base for streaming WebSocket TTS services. Subclasses implement ``make_protocol``.

    ``sample_rate``: the rate asked of the service (None: the StartFrame's
    ``audio_out_sample_rate``, else 8000). ``encoding``: "mulaw" or "l16" (None: μ-law at
    8 kHz, the phone wire's own format, else PCM). ``first_words``: words buffered before a
    reply's first text goes out. ``apology``: True for the packaged recording, False for none.
    """

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        encoding: str | None = None,
        first_words: int = 3,
        connect_timeout_secs: float = 5.0,
        send_timeout_secs: float = 2.0,
        connect_attempts: int = 3,
        reconnect_backoff_secs: float = 0.2,
        first_byte_timeout_secs: float = 3.0,
        stall_timeout_secs: float = 3.0,
        context_slot_timeout_secs: float = 2.0,
        context_close_timeout_secs: float = 5.0,
        close_timeout_secs: float = 2.0,
        apology: ApologyAudio | bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if encoding not in (None, "mulaw", "l16"):
            raise ValueError(f"encoding must be 'mulaw' or 'l16', not {encoding!r}")
        self._init_sample_rate, self._init_encoding = sample_rate, encoding
        self.first_words = first_words
        self.connect_timeout_secs = connect_timeout_secs
        self.send_timeout_secs = send_timeout_secs
        self.connect_attempts = max(1, connect_attempts)
        self.reconnect_backoff_secs = reconnect_backoff_secs
        self.first_byte_timeout_secs = first_byte_timeout_secs
        self.stall_timeout_secs = stall_timeout_secs
        self.context_slot_timeout_secs = context_slot_timeout_secs
        self.context_close_timeout_secs = context_close_timeout_secs
        self.close_timeout_secs = close_timeout_secs
        self.apology = default_apology() if apology is True else (apology or None)
        self.protocol: TTSProtocol | None = None
        self._ws: ClientConnection | None = None
        self._connecting: asyncio.Task[ClientConnection] | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._contexts: dict[str, Segment] = {}  # open at the service: id -> its segment
        self._retiring: dict[str, asyncio.TimerHandle] = {}  # cancelled, slot held until done
        self._slot_free = asyncio.Event()
        self._items: asyncio.Queue[Frame | Reply] = asyncio.Queue(MAX_PENDING_ITEMS)
        self._speaker = Speaker(self)
        self._reply: Reply | None = None
        self._closing = False
        #: Replies that failed (each pushed an ErrorFrame and the apology).
        self.error_count = 0
        #: Messages dropped because their context was cancelled or unknown.
        self.stale_messages = 0
        #: Context ids cancelled at the service (barge-ins), oldest first.
        self.cancelled_contexts: list[str] = []
        #: Connections opened (1 + reconnects).
        self.connections = 0

    # --- hooks ------------------------------------------------------------------------------

    def make_protocol(self, sample_rate: int, encoding: str) -> TTSProtocol:
        """The vendor protocol for this call's audio format."""
        raise NotImplementedError

    # --- frames in ----------------------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if frame.__class__ is InputAudioRawFrame:  # the caller's audio, 50 a second: passed on as is
            await self.push_frame(frame, direction)
            return
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            rate = self._init_sample_rate or frame.audio_out_sample_rate or 8000
            self.protocol = self.make_protocol(rate, self._init_encoding or ("mulaw" if rate == 8000 else "l16"))
            self._speaker.start()
            self._connect_in_background()
        elif isinstance(frame, CancelFrame):
            await self._reset()
            await self._close()
        elif isinstance(frame, InterruptionFrame):
            await self._reset()
            self._speaker.start()
        elif direction is DOWNSTREAM and not isinstance(frame, SystemFrame):
            await self._handle_data(frame)
            return
        await self.push_frame(frame, direction)

    async def _handle_data(self, frame: Frame) -> None:
        if isinstance(frame, LLMFullResponseStartFrame):
            await self._end_reply(None)
            await self._items.put(frame)
            await self._new_reply()
        elif isinstance(frame, LLMTextFrame) or type(frame) is TextFrame:
            assert isinstance(frame, TextFrame)
            reply = self._reply or await self._new_reply()
            await self._send_text(reply, reply.words.push(frame.text))
        elif isinstance(frame, TTSSpeakFrame):
            await self._speak(frame)
        elif isinstance(frame, LLMFullResponseEndFrame):
            await self._end_reply(frame)
        else:
            if isinstance(frame, EndFrame):
                await self._end_reply(None)
            await self._items.put(frame)

    async def _new_reply(self) -> Reply:
        reply = Reply(f"{self.name}-r{next(_ids)}", WordBuffer(self.first_words), self._speaker.generation)
        self._reply = reply
        await self._items.put(reply)
        return reply

    async def _speak(self, frame: TTSSpeakFrame) -> None:
        reply = self._reply
        if reply is None:
            reply = await self._new_reply()
            reply.append_to_context = frame.append_to_context
            await self._send_text(reply, frame.text + " ")
            await self._end_reply(None)
            return
        await self._send_text(reply, reply.words.flush() + " " + frame.text + " ")

    async def _end_reply(self, frame: Frame | None) -> None:
        reply, self._reply = self._reply, None
        if reply is None:
            if frame is not None:
                await self._items.put(frame)
            return
        reply.end_frame = frame
        await self._send_text(reply, reply.words.flush())
        segment = reply.current
        if segment is not None and not reply.failed and self.protocol is not None:
            if self._expired(segment):
                segment.done = True  # the service already dropped it; nothing more will come
            else:
                await self._send(self.protocol.flush(segment.context_id), reply)
        reply.mark_flushed()

    # --- sending ------------------------------------------------------------------------------

    async def _send_text(self, reply: Reply, text: str) -> None:
        if not text or not text.strip() or reply.failed or self.protocol is None:
            return
        segment = reply.current
        if segment is None or segment.done or self._expired(segment):
            if segment is not None and not segment.done:
                segment.done = True  # expired: its audio is all here; a new context goes on
                self._release(segment.context_id)
            segment = await self._open_segment(reply)
            if segment is None:
                return
        if not reply.ttfb_started:
            reply.ttfb_started = True
            await self.start_ttfb_metrics()
        await self.start_tts_usage_metrics(text)
        segment.last_activity = time.monotonic()
        await self._send(self.protocol.send_text(segment.context_id, text), reply)

    def _expired(self, segment: Segment) -> bool:
        expiry = self.protocol.context_expiry_secs if self.protocol else None
        if expiry is None or not segment.audio_ms:
            return False
        return time.monotonic() - max(segment.last_activity, segment.last_audio_at) > 0.7 * expiry

    async def _open_segment(self, reply: Reply) -> Segment | None:
        assert self.protocol is not None
        limit = self.protocol.max_contexts
        try:
            async with asyncio.timeout(self.context_slot_timeout_secs):
                while limit is not None and self.contexts_held >= limit:
                    self._slot_free.clear()
                    await self._slot_free.wait()
        except TimeoutError:
            reply.fail(ServiceError(None, f"no free context slot within {self.context_slot_timeout_secs}s"))
            return None
        segment = reply.add_segment(f"{reply.reply_id}-c{len(reply.segments) + 1}")
        self._contexts[segment.context_id] = segment
        await self._send(self.protocol.open_context(segment.context_id), reply)
        return segment

    def _release(self, context_id: str) -> None:
        if self._contexts.pop(context_id, None) is not None:
            self._slot_free.set()

    @property
    def contexts_held(self) -> int:
        """Contexts counting toward ``max_contexts`` now (open, and cancelled but not done)."""
        return len(self._contexts) + len(self._retiring)

    def _retire(self, context_id: str) -> None:
        """A cancelled context: free its slot now, or (``cancel_holds_slot``) when it is done."""
        if self.protocol is not None and self.protocol.cancel_holds_slot and context_id in self._contexts:
            self._contexts.pop(context_id)
            loop = asyncio.get_running_loop()
            self._retiring[context_id] = loop.call_later(self.context_close_timeout_secs, self.retired, context_id)
        else:
            self._release(context_id)

    def retired(self, context_id: str) -> None:
        """A cancelled context is done at the service (or its wait timed out): its slot is free."""
        handle = self._retiring.pop(context_id, None)
        if handle is not None:
            handle.cancel()
            self._slot_free.set()

    def _forget_retiring(self) -> None:
        for handle in self._retiring.values():
            handle.cancel()
        self._retiring.clear()

    async def _send(self, messages: list[str], reply: Reply | None = None) -> bool:
        if not messages:
            return True
        try:
            ws = await self._connection()
            async with asyncio.timeout(self.send_timeout_secs):
                for message in messages:
                    await ws.send(message)
            return True
        except Exception as exc:  # CancelledError is a BaseException: it propagates
            logger.warning("! %s: send failed: %r", self.name, exc)
            if reply is not None:
                reply.fail(ServiceError(None, f"send failed: {exc!r}"))
            return False

    async def finish_context(self, segment: Segment) -> None:
        """The service said a context is done: release its slot (ElevenLabs: close it)."""
        self._release(segment.context_id)
        if self.protocol is not None:
            await self._send(self.protocol.close(segment.context_id))

    # --- the connection -------------------------------------------------------------------

    def _connect_in_background(self) -> None:
        if self._ws is None and self._connecting is None and not self._closing:
            self._connecting = asyncio.get_running_loop().create_task(self._open(), name=f"{self.name}:connect")
            self._connecting.add_done_callback(_consume)

    async def _connection(self) -> ClientConnection:
        if self._ws is not None:
            return self._ws
        self._connect_in_background()
        if self._connecting is None:
            raise ConnectionError("the service is closing")
        return await asyncio.shield(self._connecting)

    async def _open(self) -> ClientConnection:
        assert self.protocol is not None
        try:
            last: Exception | None = None
            for attempt in range(self.connect_attempts):
                if attempt:
                    await asyncio.sleep(self.reconnect_backoff_secs * attempt)
                try:
                    ws = await connect(
                        self.protocol.url(),
                        additional_headers=self.protocol.headers(),
                        open_timeout=self.connect_timeout_secs,
                        max_size=MAX_MESSAGE_BYTES,
                        ping_interval=None,
                        compression=None,  # base64 audio inflated per chunk for ~25 %: not worth the CPU
                        logger=wire_logger,
                    )
                except (OSError, TimeoutError, Exception) as exc:
                    last = exc
                    logger.warning("! %s: connect attempt %d failed: %r", self.name, attempt + 1, exc)
                    continue
                self._ws = ws
                self.connections += 1
                logger.debug("+ %s: connected", self.name)
                self._receiver = asyncio.get_running_loop().create_task(self._receive(ws), name=f"{self.name}:recv")
                if self.protocol.keepalive_secs and self._keepalive is None:
                    self._keepalive = asyncio.get_running_loop().create_task(self._keep_alive(), name=f"{self.name}:ka")
                return ws
            raise ConnectionError(f"could not connect after {self.connect_attempts} attempts: {last!r}")
        finally:
            self._connecting = None

    async def _receive(self, ws: ClientConnection) -> None:
        assert self.protocol is not None
        reason = "closed by the service"
        try:
            async for message in ws:
                for event in self.protocol.parse(message):
                    await self._speaker.dispatch(event)
                    if self.protocol.error_closes_connection and isinstance(event, ServiceError):
                        if event.context_id is None:
                            raise ConnectionError(f"the service ended the connection: {event.message}")
        except Exception as exc:  # CancelledError is a BaseException: it propagates
            reason = repr(exc)
        finally:
            # no await before the state is reset: the next reply must not see this socket
            if self._ws is ws:
                self._ws = None
            lost = list(self._contexts.values())
            self._contexts.clear()
            self._forget_retiring()
            self._slot_free.set()
            if not self._closing:
                logger.warning("! %s: connection lost (%s)", self.name, reason)
                for segment in lost:
                    segment.reply.fail(ServiceError(None, f"connection lost: {reason}"))
                self._connect_in_background()
            if self._ws is not ws:
                with contextlib.suppress(Exception):
                    await ws.close()

    async def _keep_alive(self) -> None:
        assert self.protocol is not None and self.protocol.keepalive_secs
        while not self._closing:
            await asyncio.sleep(self.protocol.keepalive_secs)
            if self._ws is not None:
                await self._send(self.protocol.keepalive())

    async def _close(self) -> None:
        self._closing = True
        tasks = [t for t in (self._connecting, self._keepalive) if t is not None]
        for task in tasks:
            task.cancel()
        ws, self._ws = self._ws, None
        goodbye = self.protocol.goodbye() if self.protocol is not None else []
        if ws is not None and goodbye:
            with contextlib.suppress(Exception):  # TimeoutError included: then close it ourselves
                async with asyncio.timeout(self.close_timeout_secs):
                    for message in goodbye:
                        await ws.send(message)
                    await ws.wait_closed()
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        self._forget_retiring()
        if self._receiver is not None:
            self._receiver.cancel()
            tasks.append(self._receiver)
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- interruptions and shutdown -----------------------------------------------------------

    async def _reset(self) -> None:
        """Drop everything of the current replies and cancel their contexts at the service."""
        playing = await self._speaker.stop()
        replies = [item for item in self._speaker.drain_items() if isinstance(item, Reply)]
        if playing is not None:
            replies.append(playing)
        if self._reply is not None and self._reply not in replies:
            replies.append(self._reply)
        self._reply = None
        for reply in replies:
            for segment in reply.segments:
                if segment.context_id in self._contexts:
                    self._retire(segment.context_id)
                    self.cancelled_contexts.append(segment.context_id)
                    if self.protocol is not None and self._ws is not None:
                        await self._send(self.protocol.cancel(segment.context_id))

    async def stop_at_end(self, frame: EndFrame) -> None:
        """Called by the speaker when the EndFrame passes, after the last audio."""
        await self._close()

    async def cleanup(self) -> None:
        await self._reset()
        await self._close()
        await super().cleanup()

    def __repr__(self) -> str:  # no credentials: the protocol object holds them
        return f"{type(self).__name__}(name={self.name!r})"


def _consume(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a failed connect is reported where it is awaited
