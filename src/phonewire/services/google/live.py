"""GeminiLiveLLMService: speech to speech on Gemini Live, on the same interface as the OpenAI
Realtime service (tools via ``register_function``, transcripts into an ``LLMContext``, the
recorded apology when the model fails).

Gemini speaks PCM16 only (16 kHz in, 24 kHz out), so a phone call costs one resample each way:
caller PCM at the pipeline rate -> 16 kHz here, and the model's 24 kHz audio -> the wire rate
in the output transport. Barge-in is the server's: ``serverContent.interrupted`` means it
heard the caller and stopped; we clear the phone (an InterruptionFrame through the output
transport) and drop the rest of that turn. There is no truncate in this API: the server keeps
what it generated, not what was heard (docs/services/realtime.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

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
    Google's), ``model``, ``instructions``, ``voice``, ``tools``, ``context``."""

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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._key = api_key or os.environ.get("GOOGLE_API_KEY")
        if not self._key:
            raise ConfigurationError("GeminiLiveLLMService needs api_key= or GOOGLE_API_KEY")
        self.url = le.live_url(base_url or os.environ.get("GEMINI_BASE_URL") or le.DEFAULT_BASE_URL)
        if tools is not None and hasattr(tools, "to_openai_tools"):
            tools = tools.to_openai_tools()
        self._setup = le.setup(model, instructions=instructions, voice=voice, tools=list(tools or []))
        self.context = context if context is not None else LLMContext()
        self.connect_timeout_secs = connect_timeout_secs
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
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
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await ws.close()

    async def _send(self, text: str) -> None:
        ws = self._ws
        if ws is None:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await ws.send(text)

    async def _send_audio(self, frame: InputAudioRawFrame) -> None:
        if self._ws is None or not frame.audio:
            return
        await self._send(le.audio_input(self._converter.convert(frame.audio, frame.sample_rate)))

    async def _run(self) -> None:
        try:
            async with asyncio.timeout(self.connect_timeout_secs):
                self._ws = await connect(self.url, additional_headers={"x-goog-api-key": self._key or ""})
                await self._ws.send(self._setup)
                while not le.parse_server_message(await self._ws.recv()).setup_complete:
                    pass
        except Exception as exc:
            await self._fail("connect", f"{type(exc).__name__}: {str(exc)[:120]}")
            return
        try:
            while True:
                await self._on_message(le.parse_server_message(await self._ws.recv()))
        except websockets.ConnectionClosed as exc:
            if self._task is not None:
                await self._fail("connection", f"closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})")

    async def _on_message(self, msg: le.LiveServerMessage) -> None:
        if msg.problem:
            self.count_error("protocol", msg.problem)
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
