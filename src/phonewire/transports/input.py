"""The input side: reads the provider's messages and feeds the pipeline.

Every inbound message is parsed on its own: a bad one is logged, counted and skipped, and
the call goes on (Pipecat's single try around the whole loop deafens the call on the
first bad message). Reading continues until the socket closes, also while the output is
draining at the end of a call, so a remote hang-up during the goodbye is still seen.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocketState

from phonewire.audio.g711 import alaw_to_pcm, ulaw_to_pcm
from phonewire.audio.resample import RateConverter
from phonewire.audio.vad.silero import SileroVADAnalyzer
from phonewire.exceptions import ProtocolError
from phonewire.frames import (
    CancelFrame,
    ClientConnectedFrame,
    ErrorFrame,
    Frame,
    FrameDirection,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    StartFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
    VADUserStoppingFrame,
)
from phonewire.processors.frame_processor import FrameProcessor
from phonewire.serializers.base import (
    ClearAcknowledged,
    Message,
    PlaybackMarkReached,
    ProviderError,
    StreamStarted,
    StreamStopped,
)
from phonewire.transports.call_state import PEER_CLOSED, CloseReason
from phonewire.transports.vad_batcher import VADBatcher

if TYPE_CHECKING:
    from phonewire.transports.fastapi import FastAPIWebsocketTransport

#: Close codes of a deliberate end (a close frame saying normal or going away): no resume.
#: 1005 is not one: uvicorn's websockets-sansio implementation reports a connection lost
#: without a close frame as 1005 (the others as 1006), so a hang-up is a stop or a 1000.
DELIBERATE_CLOSE_CODES = frozenset({1000, 1001})

__all__ = ["FastAPIWebsocketInputTransport"]

DOWN = FrameDirection.DOWNSTREAM
UP = FrameDirection.UPSTREAM
#: Silero runs at 8 or 16 kHz; other wire rates are converted for the VAD only.
VAD_FALLBACK_RATE = 16000
#: Decoders for wire-mode audio that a VAD still needs as PCM.
_G711 = {"mulaw": ulaw_to_pcm, "alaw": alaw_to_pcm}


class FastAPIWebsocketInputTransport(FrameProcessor):
    def __init__(self, transport: FastAPIWebsocketTransport, pending: list[Message], *, name: str | None) -> None:
        super().__init__(name=name)
        self._t = transport
        #: The transport's params (the same object for the whole call; a resume swaps only its
        #: serializer), held here for the per-message path.
        self._params = transport.params
        self._pending = pending
        self._converter: RateConverter | None = None
        self._vad_converter: RateConverter | None = None
        self._receiving: asyncio.Task[None] | None = None
        self.peer_closed = False
        #: The code of the peer's close (ASGI ``websocket.disconnect``; 1006: no close frame).
        self.close_code: int | None = None
        self.sample_rate = 0
        self._rate_tokens: float | None = None  # the message bucket (None: full, not yet used)
        self._rate_at = 0.0
        self._user_speaking = False
        self._pending_interrupt_at: float | None = None
        self._allow_interruptions = True
        self._batcher: VADBatcher | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            await self._start(frame)
        elif isinstance(frame, CancelFrame):
            await self._stop_receiving()
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def _start(self, frame: StartFrame) -> None:
        t = self._t
        wire_rate = t.serializer.input_format.sample_rate
        self.sample_rate = t.params.audio_in_sample_rate or frame.audio_in_sample_rate or wire_rate
        self._converter = RateConverter(self.sample_rate)
        self._allow_interruptions = frame.allow_interruptions
        self._setup_vad(wire_rate)
        if t.params.session_timeout:
            t.spawn(self._session_timer(t.params.session_timeout), "session-timeout")
        t.use_raw_channel()
        self._receiving = t.spawn(self._receive_loop(), "receive")
        t.start_watchdog()
        t.fire_once("on_client_connected")
        await self.push_frame(ClientConnectedFrame())

    def _setup_vad(self, wire_rate: int) -> None:
        vad = self._t.params.vad_analyzer
        if vad is None:
            return
        if self._t.params.vad_batching and isinstance(vad, SileroVADAnalyzer):
            self._batcher = VADBatcher.for_loop()
        try:
            vad.set_sample_rate(wire_rate)
        except ValueError:
            vad.set_sample_rate(VAD_FALLBACK_RATE)
            self._vad_converter = RateConverter(VAD_FALLBACK_RATE)

    async def _session_timer(self, seconds: float) -> None:
        await self._t.sleep(seconds)
        await self._t.session_timed_out()

    async def _stop_receiving(self) -> None:
        task, self._receiving = self._receiving, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def cleanup(self) -> None:
        if self._batcher is not None:
            self._batcher.forget(self._t.params.vad_analyzer)
        await self._stop_receiving()
        await super().cleanup()
        await self._t.cleanup()

    # --- reading -----------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        for message in self._pending:
            await self._handle(message)
        self._pending = []
        reason, text = await self._read_until_closed()
        # Closed by the peer, or by us because of its behaviour (a limit, no media): only in
        # the first case is the call known to be over; in the second a hang-up still helps.
        self.peer_closed = reason in PEER_CLOSED
        # A connection that died without a close frame (or whose reads fail) may be followed by
        # a reconnect for the same call (FastAPIWebsocketTransport.resume_window_secs).
        dropped = reason is CloseReason.RECEIVE_FAILED or (
            reason is CloseReason.CLIENT_DISCONNECTED and self.close_code not in DELIBERATE_CLOSE_CODES
        )
        if not self._t.closed or self._t.parked is not None:
            await self._t.peer_gone(reason, text, resumable=dropped or reason is CloseReason.NO_MEDIA)

    async def detach_socket(self) -> None:
        """A reconnect takes the call over: the old socket's receive loop stops."""
        await self._stop_receiving()

    def attach_socket(self, pending: list[Message]) -> None:
        """Read the reconnect's socket from now on, its handshake's leftovers first."""
        self._pending = list(pending)
        self.peer_closed = False
        self.close_code = None
        self._rate_tokens = None
        self._receiving = self._t.spawn(self._receive_loop(), "receive")

    async def _read_until_closed(self) -> tuple[CloseReason, str | None]:
        """Why reading ended, and the text to keep (None: the reason's own)."""
        t = self._t
        ws = t.websocket
        receive = t.raw_receive or ws.receive
        task = asyncio.current_task()
        watchdog = t.watchdog
        watchdog.watch_receive(task)
        while True:
            try:
                message = await receive()
            except asyncio.CancelledError:
                # The transport's watchdog cancels a receive after no_media_timeout_secs of
                # silence (a half-open TCP peer); any other cancel is ours and propagates.
                if not watchdog.claim_receive_timeout(task):
                    raise
                await t.abort(1001, CloseReason.NO_MEDIA)
                return CloseReason.NO_MEDIA, None
            except Exception as exc:  # the ASGI server reports a dead socket this way
                return CloseReason.RECEIVE_FAILED, f"receive failed ({type(exc).__name__})"
            now = watchdog.last_receive = t.clock()
            if message["type"] == "websocket.disconnect":
                ws.client_state = WebSocketState.DISCONNECTED  # what Starlette's receive records
                self.close_code = message.get("code")
                return CloseReason.CLIENT_DISCONNECTED, None
            data = message.get("text")
            if data is None:
                data = message.get("bytes")
            if data is None:
                continue
            verdict = self._check_limits(data, now)
            if verdict is not None:
                await self._t.abort(*verdict)
                return verdict[1], None
            # _handle, inline: this loop runs 50 times a second per call.
            for item in self._deserialize(data):
                if type(item) is InputAudioRawFrame:
                    await self._on_audio(item)
                else:
                    await self._dispatch(item)

    def _check_limits(self, data: Message, now: float) -> tuple[int, CloseReason] | None:
        """Returns (close code, reason) when a limit trips."""
        t = self._t
        params, stats, size = self._params, t.stats, len(data)
        limit = params.max_message_bytes
        if size > limit >> 2 and type(data) is str:
            # A text frame's limit is in UTF-8 bytes: len() counts characters, up to 4 bytes
            # each. Only a frame whose characters could exceed the limit is encoded (a media
            # packet is ~300 ASCII characters, never near it).
            size = len(data.encode("utf-8", "surrogatepass"))
        stats.messages_in += 1
        stats.bytes_in += size
        if size > limit:
            t.log.warning("! message of %d bytes exceeds max_message_bytes: closing (1009)", size)
            return 1009, CloseReason.MESSAGE_TOO_BIG
        rate = params.max_messages_per_second
        if rate is None:
            return None
        # A token bucket: ``rate`` a second, ``max_message_burst_secs`` of them at once. Counted
        # when read, so a backlog read after a stall of our own loop must fit in the burst.
        burst = rate * params.max_message_burst_secs
        tokens = self._rate_tokens
        tokens = burst if tokens is None else min(burst, tokens + (now - self._rate_at) * rate)
        self._rate_at, self._rate_tokens = now, tokens - 1.0
        if tokens < 1.0:
            t.log.warning("! more than %.0f messages/s (burst %.0f): closing (1008)", rate, burst)
            return 1008, CloseReason.MESSAGE_RATE
        return None

    async def _handle(self, data: Message) -> None:
        for item in self._deserialize(data):
            if type(item) is InputAudioRawFrame:  # 50 a second: skip the generic dispatch
                await self._on_audio(item)
            else:
                await self._dispatch(item)

    def _deserialize(self, data: Message) -> list[Any]:
        """The serializer's frames and events, or none: a bad message is counted and skipped."""
        t = self._t
        try:
            return self._params.serializer.deserialize(data)
        except ProtocolError as exc:
            t.protocol_error(exc)
        except Exception:  # a serializer bug: still never end the call
            t.stats.internal_errors += 1
            t.log.exception("! serializer raised unexpectedly (bug); message skipped")
        return []

    async def _dispatch(self, item: Any) -> None:
        t = self._t
        if isinstance(item, InputAudioRawFrame):
            await self._on_audio(item)
        elif isinstance(item, InputDTMFFrame):
            t.stats.dtmf_in += 1
            await self.push_frame(item)
        elif isinstance(item, Frame):
            await self.push_frame(item)
        elif isinstance(item, PlaybackMarkReached):
            await t.output().on_mark(item.name)
        elif isinstance(item, StreamStopped):
            await t.stream_stopped()
        elif isinstance(item, StreamStarted):
            t.call_info = t.call_info or item.info
        elif isinstance(item, ProviderError):
            t.log.warning("! provider error %s: %s %s", item.code, item.title, item.detail[:200])
            await self.push_frame(ErrorFrame(error=f"{t.serializer.provider}: {item.title}"), UP)
        elif isinstance(item, ClearAcknowledged):
            t.log.debug("< clear acknowledged")

    def use_wire_audio(self) -> bool:
        """Wire mode: G.711 caller audio is forwarded as carried (``InputAudioRawFrame.wire_audio``),
        never decoded or resampled, for a service that speaks the line's codec. Refused (False)
        when the line is not G.711 or the pipeline needs PCM at another rate or filtered; a VAD
        still gets PCM (decoded for it alone). Call it before the pipeline starts."""
        params, ser = self._t.params, self._t.serializer
        if ser.input_format.encoding not in _G711 or params.audio_in_filter is not None:
            return False
        if params.audio_in_sample_rate not in (None, ser.input_format.sample_rate):
            return False
        ser.keep_wire_audio = True
        return True

    async def _on_wire_audio(self, frame: InputAudioRawFrame, wire: bytes) -> None:
        t = self._t
        params = self._params
        t.stats.audio_in_ms += len(wire) * 1000 / frame.sample_rate
        if t.recorder is not None:
            t.recorder.caller(wire, frame.sample_rate, frame.wire_encoding or "mulaw")
        if not params.audio_in_enabled:
            return
        if params.vad_analyzer is not None:
            pcm = _G711[frame.wire_encoding or "mulaw"](wire)  # for the VAD only
            if self._vad_converter is not None:
                pcm = self._vad_converter.convert(pcm, frame.sample_rate)
            await self._run_vad(pcm)
        if params.audio_in_passthrough and self._next is not None:
            await self._next.queue_frame(frame, DOWN)

    async def _on_audio(self, frame: InputAudioRawFrame) -> None:
        wire = frame.wire_audio
        if wire is not None and not frame.audio:
            await self._on_wire_audio(frame, wire)
            return
        t = self._t
        params = self._params
        t.stats.audio_in_ms += len(frame.audio) * 500 / (frame.sample_rate * frame.num_channels)  # duration, ms
        if t.recorder is not None:
            t.recorder.caller(frame.audio, frame.sample_rate)
        if not params.audio_in_enabled:
            return
        if params.vad_analyzer is not None:
            vad_pcm = frame.audio
            if self._vad_converter is not None:
                vad_pcm = self._vad_converter.convert(vad_pcm, frame.sample_rate)
            await self._run_vad(vad_pcm)
        assert self._converter is not None
        pcm = self._converter.convert(frame.audio, frame.sample_rate)
        if params.audio_in_filter is not None:
            pcm = await self._filter(pcm)
        if pcm and params.audio_in_passthrough:
            nxt = self._next
            if nxt is None:
                return
            if pcm is not frame.audio or frame.sample_rate != self.sample_rate:
                frame = InputAudioRawFrame(audio=pcm, sample_rate=self.sample_rate)
            await nxt.queue_frame(frame, DOWN)  # the serializer's frame when nothing changed

    async def _filter(self, pcm: bytes) -> bytes:
        result = self._t.params.audio_in_filter.filter(pcm)
        return await result if inspect.isawaitable(result) else result

    # --- turn-taking ---------------------------------------------------------------------

    async def _run_vad(self, pcm: bytes) -> None:
        vad = self._t.params.vad_analyzer
        if self._batcher is not None:
            self._batcher.submit(vad, pcm, self._on_transitions)
            return
        await self._on_transitions(vad.analyze(pcm))

    async def _on_transitions(self, transitions: list[Any]) -> None:
        if self._t.closed:
            return
        for transition in transitions:
            if transition.state.name == "SPEAKING":
                await self._user_started(transition)
            elif transition.state.name == "QUIET":
                await self._user_stopped(transition)
            else:  # STOPPING: the early stop report (VADParams.early_stop_secs), for a segmented STT
                silence = self._t.params.vad_analyzer.params.early_stop_secs
                await self.push_frame(VADUserStoppingFrame(silence_secs=silence, timestamp=time.time()))
        await self._maybe_interrupt()

    async def _user_started(self, transition: Any) -> None:
        self._user_speaking = True
        params = self._t.params.vad_analyzer.params
        await self.push_frame(VADUserStartedSpeakingFrame(start_secs=params.start_secs, timestamp=time.time()))
        await self.push_frame(UserStartedSpeakingFrame())
        onset = transition.speech_start_time or transition.stream_time
        self._pending_interrupt_at = onset + self._t.params.interruption_min_speech_secs

    async def _user_stopped(self, transition: Any) -> None:
        self._user_speaking = False
        self._pending_interrupt_at = None
        params = self._t.params.vad_analyzer.params
        await self.push_frame(VADUserStoppedSpeakingFrame(stop_secs=params.stop_secs, timestamp=time.time()))
        await self.push_frame(UserStoppedSpeakingFrame())

    async def _maybe_interrupt(self) -> None:
        """Interrupt once per user turn, when the caller has talked long enough over the bot."""
        due = self._pending_interrupt_at
        if due is None or not self._allow_interruptions:
            return
        if self._t.params.vad_analyzer.stream_time < due:
            return
        self._pending_interrupt_at = None
        if self._t.output().has_pending_audio():
            self._t.stats.interruptions += 1
            self._t.log.info("= caller barged in: interrupting the bot")
            await self.push_frame(InterruptionFrame())
