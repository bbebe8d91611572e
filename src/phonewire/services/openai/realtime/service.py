"""OpenAIRealtimeLLMService: speech to speech on the OpenAI Realtime API (GA), for phone calls.

It replaces STT + LLM + TTS. What it adds to a plain bridge:

* **zero transcoding on μ-law calls**: with the input transport in wire mode the caller's
  μ-law bytes go into ``input_audio_buffer.append`` as carried, and the model's ``audio/pcmu``
  deltas come back as ``TTSWireAudioFrame`` that the output transport sends untouched;
* **exact barge-in**: on the caller's speech (the server's ``speech_started`` or phonewire's
  own ``InterruptionFrame``) the phone's buffer is cleared (an InterruptionFrame through the
  output transport), the response cancelled, and each unheard item truncated at what the
  caller heard *according to the provider's playback acks* (the output transport's
  ``BotStoppedSpeakingFrame.heard_ms``), clamped to the item's audio (``ledger.py``);
* tools through ``register_function`` (``LLMService``), both sides' transcripts in an
  ``LLMContext``, a session handed over from a prewarm, reconnects that replay the context,
  and the recorded apology - never silence - when the model fails.

The reader is one owned task per connection; every wait on the API has a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable
from typing import Any

import websockets

from phonewire.frames import (
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    FrameDirection,
    FunctionCallFromLLM,
    FunctionCallResultProperties,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMRunFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSWireAudioFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from phonewire.processors.aggregators.llm_context import LLMContext
from phonewire.services.apology import ApologyAudio, default_apology
from phonewire.services.function_calls import RequestedCall, RunningFunctionCall
from phonewire.services.llm_service import LLMService
from phonewire.services.openai.realtime import events as ev
from phonewire.services.openai.realtime.audio import CallerAudio
from phonewire.services.openai.realtime.connection import RealtimeConnection, open_realtime
from phonewire.services.openai.realtime.ledger import ReplyLedger

__all__ = ["OpenAIRealtimeLLMService"]

logger = logging.getLogger("phonewire.services.openai.realtime")
#: Caller audio held while the session opens (20 ms packets): 2 s, then the oldest is dropped.
MAX_PENDING_PACKETS = 100
_WIRE = {"pcmu": "mulaw", "pcma": "alaw"}


class OpenAIRealtimeLLMService(LLMService):
    """Args: ``api_key`` (or ``OPENAI_API_KEY``), ``base_url`` (or ``OPENAI_BASE_URL``; the WS URL
    is derived as the SDK does), ``model``, ``instructions``, ``voice``, ``audio_format``
    ("pcmu" for μ-law calls, "pcma", or "pcm" = 24 kHz PCM16 for other lines),
    ``turn_detection`` ("server_vad", "semantic_vad", a GA dict, or None to let phonewire's
    VAD commit turns), ``tools`` (a list or ToolsSchema; handlers via ``register_function``),
    ``context`` (an LLMContext that receives both sides' transcripts), ``connection`` (a
    prewarmed ``RealtimeConnection`` or an awaitable of one), ``max_session_secs`` (renewed
    between turns before the API's 60-minute limit)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str = "gpt-realtime",
        instructions: str | None = None,
        voice: str | None = "marin",
        audio_format: ev.AudioFormat = "pcmu",
        turn_detection: str | dict[str, Any] | None = "server_vad",
        transcription_model: str | None = "gpt-4o-mini-transcribe",
        tools: Any = None,
        context: LLMContext | None = None,
        connection: RealtimeConnection | Awaitable[RealtimeConnection] | None = None,
        connect_timeout_secs: float = 5.0,
        max_session_secs: float = 55 * 60,
        reconnect_attempts: int = 2,
        apology_audio: ApologyAudio | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if tools is not None and hasattr(tools, "to_openai_tools"):
            tools = tools.to_openai_tools()
        self.config = ev.RealtimeSessionConfig(
            model=model,
            instructions=instructions,
            voice=voice,
            input_format=audio_format,
            output_format=audio_format,
            turn_detection=turn_detection,
            transcription_model=transcription_model,
            tools=list(tools or []),
        )
        self.context = context if context is not None else LLMContext()
        self._api_key = api_key
        self._base_url = base_url
        self._handed: RealtimeConnection | Awaitable[RealtimeConnection] | None = connection
        self.connect_timeout_secs = connect_timeout_secs
        self.max_session_secs = max_session_secs
        self.reconnect_attempts = reconnect_attempts
        self._apology_audio = apology_audio
        self._conn: RealtimeConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: deque[str] = deque(maxlen=MAX_PENDING_PACKETS)
        self._audio = CallerAudio(audio_format)
        self._reply: ReplyLedger | None = None
        self._active_response: str | None = None
        self._muted: set[str] = set()
        self._calls: dict[str, list[str]] = {}  # response id -> call ids still unanswered
        self._pending_calls: list[RequestedCall] = []  # asked for by the response in progress
        self._user_slots: dict[str, dict[str, Any]] = {}
        self._last_stop: BotStoppedSpeakingFrame | None = None
        self._closing = False
        self._run_owed = False  # an LLMRunFrame came before the session was open
        #: What barge-ins sent, for logs and tests: (item_id, audio_end_ms, heard_ms, source).
        self.truncations: list[tuple[str, int, float, str]] = []
        self.sessions_opened = 0
        self.used_prewarmed = False

    # --- frames ------------------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, InputAudioRawFrame):
            await self._send_audio(frame)  # the per-packet path: consumed here
            return
        if isinstance(frame, BotStoppedSpeakingFrame):
            self._on_bot_stopped(frame)
        elif isinstance(frame, InterruptionFrame) and direction is FrameDirection.DOWNSTREAM:
            await super().process_frame(frame, direction)  # forwarded: the output clears and reports
            await self._after_interruption("phonewire VAD")
            return
        elif isinstance(frame, StartFrame):
            await super().process_frame(frame, direction)
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self.name}:realtime")
            return
        elif isinstance(frame, LLMRunFrame):  # respond now (a greeting): consumed
            if not await self._send(ev.response_create()):
                self._run_owed = True
            return
        elif isinstance(frame, UserStartedSpeakingFrame) and self.config.turn_detection is None:
            await self._send(ev.input_audio_clear())
        elif isinstance(frame, UserStoppedSpeakingFrame) and self.config.turn_detection is None:
            await self._send(ev.input_audio_commit())
            await self._send(ev.response_create())
        elif isinstance(frame, EndFrame | CancelFrame):
            await self._shutdown()
        await super().process_frame(frame, direction)

    async def cleanup(self) -> None:
        await self._shutdown()
        await super().cleanup()

    async def _shutdown(self) -> None:
        self._closing = True
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    # --- the connection ----------------------------------------------------------------

    async def _run(self) -> None:
        """Open (or take over) the session, then read it; on loss apologise and reconnect."""
        attempts = 0
        while not self._closing:
            conn = await self._connect(replay=attempts > 0 or self.sessions_opened > 0)
            if conn is None:
                attempts += 1
                await self._fail("connect", "could not open the realtime session")
                if attempts > self.reconnect_attempts:
                    return
                await asyncio.sleep(min(2.0, 0.25 * 2**attempts))
                continue
            attempts = 0
            reason = await self._read(conn)
            await conn.close()
            self._conn = None
            if self._closing:
                return
            if reason != "renew":
                await self._fail("connection", reason)

    async def _connect(self, *, replay: bool) -> RealtimeConnection | None:
        handed, self._handed = self._handed, None
        try:
            if handed is not None:
                async with asyncio.timeout(self.connect_timeout_secs):
                    conn = handed if isinstance(handed, RealtimeConnection) else await handed
                self.used_prewarmed = True
            else:
                conn = await open_realtime(
                    self.config, api_key=self._api_key, base_url=self._base_url,
                    connect_timeout_secs=self.connect_timeout_secs, session_timeout_secs=self.connect_timeout_secs,
                )  # fmt: skip
        except Exception as exc:
            self.count_error("connect", f"{type(exc).__name__}: {str(exc)[:200]}")
            return None
        self.sessions_opened += 1
        self._conn = conn
        self._active_response = None  # a response of a lost session is over
        if replay:
            for message in self._replayable():
                await self._send(ev.conversation_item_create(message))
        while self._pending:
            await self._send(self._pending.popleft())
        if self._run_owed:
            self._run_owed = not await self._send(ev.response_create())
        return conn

    def _replayable(self) -> list[dict[str, Any]]:
        items = []
        for m in self.context.get_messages():
            role, content = m.get("role"), m.get("content")
            if role in ("user", "assistant", "system") and isinstance(content, str) and content:
                items.append(ev.message_item(str(role), content))
        return items

    async def _send(self, text: str) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            await conn.send(text)
            return True
        except Exception as exc:  # the reader sees the close and reconnects
            logger.debug("- %s send failed: %s", self.name, type(exc).__name__)
            return False

    async def _send_audio(self, frame: InputAudioRawFrame) -> None:
        payload = self._audio.payload(frame)
        if not payload:
            return
        event = ev.audio_append(payload)
        if self._conn is None:
            self._pending.append(event)
            return
        await self._send(event)

    async def _read(self, conn: RealtimeConnection) -> str:
        from phonewire.services.openai.realtime.handlers import dispatch

        while True:
            try:
                event = await conn.recv()
            except websockets.ConnectionClosed as exc:
                return f"closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
            except Exception as exc:
                return f"receive failed ({type(exc).__name__})"
            if isinstance(event, ev.BadEvent):
                self.count_error("protocol", event.reason)
                continue
            verdict = await dispatch(self, event)
            if verdict is not None:
                return verdict
            if self._active_response is None and conn.age_secs > self.max_session_secs:
                logger.info("= %s renewing the realtime session after %.0f s", self.name, conn.age_secs)
                return "renew"

    # --- barge-in ----------------------------------------------------------------------

    def _on_bot_stopped(self, frame: BotStoppedSpeakingFrame) -> None:
        self._last_stop = frame
        if not frame.interrupted and self._reply is not None and self._reply.done:
            self._reply.played_out = True

    def reply_audible(self) -> bool:
        reply = self._reply
        return reply is not None and not reply.played_out and not reply.cancelled

    async def interrupt(self, source: str) -> None:
        """The caller talks: clear the phone, cancel the response, truncate what was unheard."""
        if not (self.reply_audible() or self._active_response):
            return
        self._generation += 1
        self._last_stop = None
        await self.push_frame(InterruptionFrame())  # the output clears and reports heard_ms (inline)
        await self._cancel_function_calls(only_interruptible=True)
        await self._after_interruption(source)

    async def _after_interruption(self, source: str) -> None:
        reply = self._reply
        if self._active_response:
            await self._send(ev.response_cancel(self._active_response))
            self._muted.add(self._active_response)
        if reply is None or reply.cancelled or reply.played_out:
            return
        reply.cancelled = True
        self._muted.add(reply.response_id)
        stop, self._last_stop = self._last_stop, None
        if stop is None or stop.heard_ms is None:
            return  # nothing was playing: the caller heard it all
        heard = stop.heard_ms
        for item_id, end_ms in reply.truncations(heard):
            await self._send(ev.truncate(item_id, end_ms))
            self.truncations.append((item_id, end_ms, heard, stop.source.value))
            logger.info(
                "= %s barge-in (%s): truncate %s at %d ms (%s)", self.name, source, item_id, end_ms, stop.source
            )
        kept = reply.heard_transcript(heard)
        self.context.add_message({"role": "assistant", "content": f"{kept} —" if kept else "—"})

    # --- output --------------------------------------------------------------------------

    def audio_frame(self, audio: bytes) -> TTSAudioRawFrame:
        fmt = self.config.output_format
        if fmt in _WIRE:
            return TTSWireAudioFrame(audio=audio, sample_rate=8000, encoding=_WIRE[fmt])
        return TTSAudioRawFrame(audio=audio, sample_rate=24000)

    async def begin_reply(self, response_id: str) -> None:
        self._reply = ReplyLedger(response_id, self.config.output_format)
        self._active_response = response_id
        await self.push_frame(LLMFullResponseStartFrame())

    async def end_reply(self, response_id: str, status: str | None) -> None:
        reply = self._reply
        if self._active_response == response_id:
            self._active_response = None
        if reply is None or reply.response_id != response_id:
            return
        reply.done = True
        if reply.audio_started and not reply.cancelled:
            await self.push_frame(TTSStoppedFrame())
            text = reply.transcript().strip()
            if text:
                self.context.add_message({"role": "assistant", "content": text})
        await self.push_frame(LLMFullResponseEndFrame())
        if status == "failed":
            await self._fail("response", "the response failed")

    async def _fail(self, kind: str, detail: str) -> None:
        """ErrorFrame upstream and the recorded apology (the model cannot say sorry itself)."""
        self.count_error(kind, detail)
        await self.push_frame(ErrorFrame(error=f"{self.name}: {kind}: {detail}", fatal=False), FrameDirection.UPSTREAM)
        if self.apology is None:
            return
        audio = self._apology_audio or default_apology()
        self.apology_count += 1
        self._reply = None
        await self.push_frame(TTSStartedFrame())
        for chunk in audio.chunks():
            await self.push_frame(TTSAudioRawFrame(audio=chunk, sample_rate=audio.sample_rate))
        await self.push_frame(TTSStoppedFrame())

    # --- tools -------------------------------------------------------------------------

    async def start_calls(self, response_id: str, calls: list[RequestedCall]) -> None:
        self._calls[response_id] = [r.call.tool_call_id for r in calls]
        await self.run_function_calls(calls, self.context)

    def requested_call(
        self, name: str, call_id: str, arguments: dict[str, Any] | None, problem: str | None
    ) -> RequestedCall:
        call = FunctionCallFromLLM(
            function_name=name, tool_call_id=call_id, arguments=arguments or {}, context=self.context
        )
        return RequestedCall(call=call, problem=problem)

    async def _deliver_result(
        self, state: RunningFunctionCall, result: Any, properties: FunctionCallResultProperties | None
    ) -> None:
        await super()._deliver_result(state, result, properties)
        await self._send(ev.function_call_output(state.tool_call_id, result))
        for response_id, ids in list(self._calls.items()):
            if state.tool_call_id in ids:
                ids.remove(state.tool_call_id)
                if not ids:
                    del self._calls[response_id]
                    if not (properties and properties.run_llm is False):
                        await self._send(ev.response_create())

    # --- user side ---------------------------------------------------------------------

    def user_item(self, item_id: str) -> None:
        """A committed caller turn: its place in the context is kept until the transcript comes."""
        slot: dict[str, Any] = {"role": "user", "content": ""}
        self._user_slots[item_id] = slot
        self.context.add_message(slot)
        while len(self._user_slots) > 64:
            self._user_slots.pop(next(iter(self._user_slots)))

    def user_transcript(self, item_id: str, text: str | None) -> None:
        slot = self._user_slots.pop(item_id, None)
        if slot is None:
            if text:
                self.context.add_message({"role": "user", "content": text})
            return
        if text:
            slot["content"] = text
            return
        messages = self.context.messages
        for i, message in enumerate(messages):
            if message is slot:  # identity: an equal empty message elsewhere must stay
                del messages[i]
                break

    async def caller_stopped(self) -> None:
        await self.push_frame(VADUserStoppedSpeakingFrame(stop_secs=0.0, timestamp=time.time()))

    def is_muted(self, response_id: str | None) -> bool:
        return response_id in self._muted

    def __repr__(self) -> str:  # never the key
        return f"<{self.name} model={self.config.model!r}>"
