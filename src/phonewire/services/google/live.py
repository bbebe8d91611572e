"""GeminiLiveLLMService: speech to speech on Gemini Live, on the same interface as the OpenAI
Realtime service (tools via ``register_function``, transcripts into an ``LLMContext``, the
recorded apology when the model fails).

Gemini speaks PCM16 only (16 kHz in, 24 kHz out), so a phone call costs one resample each way:
caller PCM at the pipeline rate -> 16 kHz here, and the model's 24 kHz audio -> the wire rate
in the output transport. Barge-in is the server's: ``serverContent.interrupted`` means it
heard the caller and stopped; we clear the phone (an InterruptionFrame through the output
transport) and drop the rest of that turn. There is no truncate in this API: the server keeps
what it generated, not what was heard (docs/services/realtime.md).

Session resumption: the setup asks for it, the latest resumable ``newHandle`` is kept, and on
``goAway`` (the server is about to end the connection) the service reconnects with that handle
at the first quiet moment (no reply being spoken, the last update resumable), or at
``timeLeft - go_away_margin_secs`` at the latest; an unexpected close reconnects the same way.
The caller's audio since the handle (up to ``resume_replay_secs``) and during the reconnect is
sent to the new connection, so nothing they say is lost; only a failed resumption is audible
(the apology).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import time
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State

from phonewire.audio.resample import RateConverter
from phonewire.exceptions import ConfigurationError
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
    StartFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from phonewire.processors.aggregators.llm_context import LLMContext
from phonewire.services.apology import default_apology
from phonewire.services.function_calls import RequestedCall, RunningFunctionCall
from phonewire.services.google import live_events as le
from phonewire.services.llm_service import LLMService

__all__ = ["GeminiLiveLLMService"]

logger = logging.getLogger("phonewire.services.google")


class GeminiLiveLLMService(LLMService):
    """Args: ``api_key`` (or ``GOOGLE_API_KEY``), ``base_url`` (or ``GEMINI_BASE_URL``; default
    Google's), ``model``, ``instructions``, ``voice``, ``tools``, ``context``;
    ``session_resumption`` (default on: reconnect on ``goAway`` or a dropped connection with the
    latest handle), ``go_away_margin_secs`` (switch at the latest this long before ``timeLeft``
    runs out), ``resume_replay_secs`` (the caller's audio since the last handle kept to send to
    a resumed connection; about 47 KB per second of audio, as base64 JSON)."""

    #: what a ``goAway`` without a readable ``timeLeft`` is taken to leave
    DEFAULT_TIME_LEFT_SECS = 5.0

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str = "gemini-live-2.5-flash-preview",
        instructions: str | None = None,
        voice: str | None = None,
        tools: Any = None,
        context: LLMContext | None = None,
        connect_timeout_secs: float = 5.0,
        session_resumption: bool = True,
        go_away_margin_secs: float = 2.0,
        resume_replay_secs: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._key = api_key or os.environ.get("GOOGLE_API_KEY")
        if not self._key:
            raise ConfigurationError("GeminiLiveLLMService needs api_key= or GOOGLE_API_KEY")
        self.url = le.live_url(base_url or os.environ.get("GEMINI_BASE_URL") or le.DEFAULT_BASE_URL)
        if tools is not None and hasattr(tools, "to_openai_tools"):
            tools = tools.to_openai_tools()
        self._setup_args: dict[str, Any] = {"instructions": instructions, "voice": voice, "tools": list(tools or [])}
        self._model = model
        self.session_resumption = session_resumption
        self.go_away_margin_secs = go_away_margin_secs
        self.context = context if context is not None else LLMContext()
        self.connect_timeout_secs = connect_timeout_secs
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()  # old connections being closed after a switch
        self._handle: str | None = None  # the latest resumable session handle
        self._resumable = False  # the latest update said the session can be resumed now
        self._go_away_at: float | None = None  # loop time by which to have switched connections
        self._switching = False  # a resumed connection is being opened: audio is held
        self._audio_seq = 0
        #: (seq, message) of the caller's audio since the latest handle: what a resumed
        #: session has not heard (and, while switching, the audio held for it)
        self._since_handle: collections.deque[tuple[int, str]] = collections.deque(
            maxlen=max(1, int(resume_replay_secs / 0.02))
        )
        self.resumptions = 0  # connections resumed (goAway or a dropped connection)
        self._converter = RateConverter(le.INPUT_RATE)
        self._speaking = False  # the model's turn is being played
        self._dropping = False  # interrupted: the rest of this turn is never played
        self._said: list[str] = []
        self._heard_user: list[str] = []
        self.interruptions = 0
        self._turn_ms = 0.0  # the model's audio received this turn
        self._heard_ms: float | None = None  # of it, what the caller heard (the output's acks)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, InputAudioRawFrame):
            await self._send_audio(frame)
            return
        if isinstance(frame, StartFrame):
            await super().process_frame(frame, direction)
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self.name}:live")
            return
        if isinstance(frame, EndFrame | CancelFrame):
            await self._shutdown()
        if isinstance(frame, BotStoppedSpeakingFrame) and frame.interrupted:
            self._heard_ms = frame.heard_ms
        await super().process_frame(frame, direction)

    async def cleanup(self) -> None:
        await self._shutdown()
        await super().cleanup()

    async def _shutdown(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        ws, self._ws = self._ws, None
        if ws is not None:
            await _close(ws)
        closing, self._closing = list(self._closing), set()
        for t in closing:
            t.cancel()
        await asyncio.gather(*closing, return_exceptions=True)

    async def _send(self, text: str) -> None:
        ws = self._ws
        if ws is None:
            return
        with contextlib.suppress(Exception):
            if writes_at_once(ws):  # no timer per 20 ms packet when nothing can wait
                await ws.send(text)
                return
            async with asyncio.timeout(2.0):
                await ws.send(text)

    async def _send_audio(self, frame: InputAudioRawFrame) -> None:
        if (self._ws is None and not self._switching) or not frame.audio:
            return
        message = le.audio_input(self._converter.convert(frame.audio, frame.sample_rate))
        if self.session_resumption:
            self._audio_seq += 1
            self._since_handle.append((self._audio_seq, message))
            if self._switching:  # held: the resumed connection gets it once it is up
                return
        await self._send(message)

    def _setup(self, handle: str | None) -> str:
        return le.setup(self._model, **self._setup_args, resumption=self.session_resumption, handle=handle)

    async def _open(self, handle: str | None) -> ClientConnection:
        """A connection, set up (``setupComplete``), within ``connect_timeout_secs``."""
        ws: ClientConnection | None = None
        try:
            async with asyncio.timeout(self.connect_timeout_secs):
                ws = await connect(self.url, additional_headers={"x-goog-api-key": self._key or ""})
                await ws.send(self._setup(handle))
                while True:
                    msg = le.parse_server_message(await ws.recv())
                    if msg.setup_complete:
                        return ws
                    self._on_resumption(msg)
        except BaseException:
            if ws is not None:
                await _close(ws)
            raise

    async def _run(self) -> None:
        try:
            self._ws = await self._open(None)
        except Exception as exc:
            await self._fail("connect", f"{type(exc).__name__}: {str(exc)[:120]}")
            return
        while True:
            ws = self._ws
            if ws is None:
                return
            try:
                async with asyncio.timeout_at(self._go_away_at):  # None: no deadline
                    raw = await ws.recv()
            except TimeoutError:  # the goAway deadline: switch now, quiet or not
                if not await self._resume("goAway deadline"):
                    return
                continue
            except websockets.ConnectionClosed as exc:
                if self._task is None:
                    return
                why = f"closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
                if not await self._resume(why):
                    return
                continue
            await self._on_message(le.parse_server_message(raw))
            if self._go_away_at is not None and self._quiet():
                if not await self._resume("goAway"):
                    return

    def _quiet(self) -> bool:
        """A moment to switch connections that loses nothing: no reply being spoken or run,
        and the server's latest word is that the session can be resumed."""
        return self._resumable and self._handle is not None and not self._speaking and not self._running

    def _on_resumption(self, msg: le.LiveServerMessage) -> None:
        if msg.resumption is None:
            return
        handle, resumable = msg.resumption
        self._resumable = resumable
        if resumable and handle:
            self._handle = handle
            self._since_handle.clear()  # the handle's state includes the audio sent so far

    def _on_go_away(self, secs: float | None) -> None:
        left = self.DEFAULT_TIME_LEFT_SECS if secs is None else secs
        if not self.session_resumption or self._handle is None:
            logger.warning("%s: goAway (%.1f s left) and no resumption handle: the session ends then", self, left)
            return
        deadline = asyncio.get_running_loop().time() + max(0.0, left - self.go_away_margin_secs)
        self._go_away_at = deadline if self._go_away_at is None else min(self._go_away_at, deadline)
        logger.info("%s: goAway, %.1f s left: resuming on a new connection", self, left)

    async def _resume(self, why: str) -> bool:
        """Open a connection with the latest handle and move to it; the old one is closed in
        the background. False (after the apology) when there is nothing to resume or it failed."""
        self._go_away_at = None
        if not self.session_resumption or self._handle is None:
            await self._fail("connection", f"{why}; no session resumption handle")
            return False
        old, self._ws = self._ws, None
        if old is not None:  # its state is in the handle (kept by the server for hours)
            self._close_later(old)
        self._switching = True
        started = time.monotonic()
        try:
            try:
                new = await self._open(self._handle)
            except Exception as exc:
                await self._fail("resume", f"{why}: {type(exc).__name__}: {str(exc)[:120]}")
                return False
            if self._speaking:  # the turn being spoken on the old connection ends here
                await self._turn_complete()
            self._ws = new  # owned from here: a shutdown closes it
            sent = 0
            try:
                async with asyncio.timeout(2.0):
                    while True:  # the caller's audio the resumed session has not heard, in order
                        batch = [(n, m) for n, m in self._since_handle if n > sent]
                        if not batch:
                            break
                        for n, m in batch:
                            await new.send(m)
                            sent = n
            except Exception as exc:
                self._ws = None
                self._close_later(new)
                await self._fail("resume", f"{why}: replay: {type(exc).__name__}")
                return False
        finally:
            self._switching = False
        self.resumptions += 1
        logger.info("%s: session resumed (%s) in %.0f ms", self, why, 1000 * (time.monotonic() - started))
        return True

    def _close_later(self, ws: ClientConnection) -> None:
        task = asyncio.get_running_loop().create_task(_close(ws), name=f"{self.name}:close")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _on_message(self, msg: le.LiveServerMessage) -> None:
        if msg.problem:
            self.count_error("protocol", msg.problem)
        if msg.resumption is not None:
            self._on_resumption(msg)
        if msg.go_away:
            self._on_go_away(msg.go_away_secs)
        if msg.input_text:  # the caller's new turn: an interrupted one is over
            self._heard_user.append(msg.input_text)
            self._dropping = False
        if msg.interrupted:
            await self._interrupted()
        for chunk in msg.audio:
            await self._play(chunk)
        if msg.output_text and not self._dropping:
            self._said.append(msg.output_text)
        if msg.tool_calls:
            await self._calls(msg.tool_calls)
        if msg.turn_complete:
            await self._turn_complete()

    async def _play(self, chunk: bytes) -> None:
        if self._dropping:
            return
        if not self._speaking:
            self._speaking = True
            self._flush_user()
            await self.push_first_token_stage()
            await self.push_frame(LLMFullResponseStartFrame())
            await self.push_frame(TTSStartedFrame())
        self._turn_ms += len(chunk) / 48
        await self.push_frame(TTSAudioRawFrame(audio=chunk, sample_rate=le.OUTPUT_RATE))

    async def _interrupted(self) -> None:
        """The server heard the caller over its turn: clear the phone, drop the turn's rest."""
        self.interruptions += 1
        self._dropping = True
        self._generation += 1
        self._heard_ms = None
        await self.push_frame(InterruptionFrame())  # the output clears and reports heard_ms (inline)
        await self._cancel_function_calls(only_interruptible=True)
        words = "".join(self._said).split()
        self._said.clear()
        if self._heard_ms is not None and self._turn_ms > 0:  # the server keeps all it said; we keep what was heard
            words = words[: int(len(words) * min(1.0, self._heard_ms / self._turn_ms))]
        self._speaking = False
        self.context.add_message({"role": "assistant", "content": " ".join([*words, "—"])})

    async def _turn_complete(self) -> None:
        if self._speaking and not self._dropping:
            await self.push_frame(TTSStoppedFrame())
            await self.push_frame(LLMFullResponseEndFrame())
        said = "".join(self._said).strip()
        self._said.clear()
        if said and not self._dropping:
            self.context.add_message({"role": "assistant", "content": said})
        self._speaking = self._dropping = False
        self._turn_ms = 0.0

    def _flush_user(self) -> None:
        text = "".join(self._heard_user).strip()
        self._heard_user.clear()
        if text:
            self.context.add_message({"role": "user", "content": text})

    async def _calls(self, calls: list[tuple[str, str, dict[str, Any]]]) -> None:
        self._flush_user()
        requested = []
        for call_id, name, args in calls:
            fc = FunctionCallFromLLM(function_name=name, tool_call_id=call_id, arguments=args, context=self.context)
            requested.append(RequestedCall(call=fc))
        await self.run_function_calls(requested, self.context)

    async def _deliver_result(
        self, state: RunningFunctionCall, result: Any, properties: FunctionCallResultProperties | None
    ) -> None:
        await super()._deliver_result(state, result, properties)
        await self._send(le.tool_response(state.tool_call_id, state.function_name, result))

    async def _fail(self, kind: str, detail: str) -> None:
        self.count_error(kind, detail)
        await self.push_frame(ErrorFrame(error=f"{self.name}: {kind}: {detail}", fatal=False), FrameDirection.UPSTREAM)
        if self.apology is None:
            return
        audio = default_apology()
        self.apology_count += 1
        await self.push_frame(TTSStartedFrame())
        for chunk in audio.chunks():
            await self.push_frame(TTSAudioRawFrame(audio=chunk, sample_rate=audio.sample_rate))
        await self.push_frame(TTSStoppedFrame())

    def __repr__(self) -> str:  # never the key
        return f"<{self.name} {self.url}>"


def writes_at_once(ws: ClientConnection) -> bool:
    """``ws.send`` cannot wait (open, transport not paused, no fragmented send in progress):
    the same check as the OpenAI Realtime connection's (``realtime/connection.py``)."""
    return (
        ws.state is State.OPEN
        and getattr(ws, "paused", True) is False
        and getattr(ws, "send_in_progress", True) is None
    )


async def _close(ws: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            await ws.close()
