"""DeepgramSTTService: Deepgram live (Nova) over one WebSocket per call, telephony done right.

* **No transcoding on μ-law calls.** The connection opens at the StartFrame as ``mulaw``/8000
  when the pipeline runs at 8 kHz; a frame carrying ``wire_audio`` (the input transport's wire
  mode, ``transport.input().use_wire_audio()``) is sent exactly as the line carried it. PCM
  frames are encoded only on a mismatch (counted in ``transcoded_packets``).
* **The inline path is cheap.** Caller audio (a system frame, 50 a second) is appended to a
  bounded ring and the sender task is woken; nothing on that path awaits the network.
* **No words lost to a drop.** The ring keeps ``replay_secs`` of audio; after a reconnect the
  audio since the last final transcript is sent again (see ``audio_ring``/``live_connection``).
* **Turns end fast.** At the VAD stop ``Finalize`` flushes Deepgram, whose ``from_finalize``
  final is pushed with ``finalized=True`` so the user aggregator runs the LLM at once.
* **Failures are heard.** No final within ``finalize_timeout_secs`` of the stop while the
  connection is down or unresponsive: ``ErrorFrame`` upstream, ``error_count += 1`` and the
  "didn't catch that" ``TTSSpeakFrame``; the next turn works once the connection is back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from phonewire.audio.g711 import alaw_to_pcm, pcm_to_alaw, pcm_to_ulaw, ulaw_to_pcm
from phonewire.exceptions import ConfigurationError
from phonewire.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    FrameDirection,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    LatencyStageFrame,
    StartFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from phonewire.services.deepgram.audio_ring import AudioRing
from phonewire.services.deepgram.live_connection import ConnectionStatus, LiveConnection
from phonewire.services.deepgram.live_protocol import (
    FINALIZE,
    DeepgramEvent,
    ErrorEvent,
    LiveOptions,
    ProtocolErrorEvent,
    TranscriptEvent,
    UtteranceEndEvent,
    auth_headers,
    bytes_per_second,
    listen_url,
)
from phonewire.services.stt_service import STTService

__all__ = ["DeepgramSTTService"]

logger = logging.getLogger("phonewire.services.deepgram")

_STARTS = (UserStartedSpeakingFrame, VADUserStartedSpeakingFrame)
_STOPS = (UserStoppedSpeakingFrame, VADUserStoppedSpeakingFrame)
_ENCODE = {"mulaw": pcm_to_ulaw, "alaw": pcm_to_alaw}
_DECODE = {"mulaw": ulaw_to_pcm, "alaw": alaw_to_pcm}


class DeepgramSTTService(STTService):
    """``api_key`` (else ``DEEPGRAM_API_KEY``), ``base_url`` (else ``DEEPGRAM_BASE_URL``, else
    ``wss://api.deepgram.com``; ``ws://127.0.0.1:PORT`` works), ``model``/``language`` (shortcuts
    for ``live_options``). See docs/services/deepgram.md for every knob."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str = "nova-3",
        language: str | None = "en-US",
        live_options: LiveOptions | None = None,
        keepalive_secs: float = 4.0,
        connect_timeout_secs: float = 5.0,
        send_timeout_secs: float = 2.0,
        finalize_timeout_secs: float = 2.0,
        close_timeout_secs: float = 2.0,
        replay_secs: float = 10.0,
        reconnect_backoff_secs: Sequence[float] = (0.0, 0.25, 0.5, 1.0, 2.0),
        **kwargs: Any,
    ) -> None:
        options = live_options or LiveOptions(model=model, language=language)
        super().__init__(language=options.language, **kwargs)
        key = api_key or os.environ.get("DEEPGRAM_API_KEY")
        if not key:
            raise ConfigurationError("DeepgramSTTService: pass api_key= or set DEEPGRAM_API_KEY")
        self._api_key = _Secret(key)  # never in a repr, a log or vars()
        self.base_url = base_url or os.environ.get("DEEPGRAM_BASE_URL")
        self.live_options = options
        self.metrics.model = options.model
        self.keepalive_secs = keepalive_secs
        self.connect_timeout_secs = connect_timeout_secs
        self.send_timeout_secs = send_timeout_secs
        self.finalize_timeout_secs = finalize_timeout_secs
        self.close_timeout_secs = close_timeout_secs
        self.replay_secs = replay_secs
        self.reconnect_backoff_secs = tuple(reconnect_backoff_secs)
        self.encoding = ""  # chosen at the StartFrame
        self.stream_sample_rate = 0
        self.transcoded_packets = 0
        self.dropped_packets = 0
        self.protocol_errors = 0
        self.server_errors = 0
        self.connection: LiveConnection | None = None
        self._ring: AudioRing | None = None
        self._speaking = False
        self._turn_text = False  # a final with text pushed this turn
        self._turn_stage_sent = False
        self._turn_failed = False  # the connection failed or dropped during this turn
        self._awaiting_final = False
        self._final_seen = asyncio.Event()
        self._watchdog: asyncio.Task[None] | None = None

    # --- frames ------------------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self._feed(frame)
            if self.audio_passthrough:
                await self.push_frame(frame, direction)
            return
        if isinstance(frame, _STARTS):
            self._user_started()
        elif isinstance(frame, _STOPS):
            self._user_stopped()
        elif isinstance(frame, StartFrame):
            self._open(frame)
        elif isinstance(frame, EndFrame):
            await self._close(graceful=True)
        elif isinstance(frame, CancelFrame):
            await self._close(graceful=False)
        await self.push_frame(frame, direction)

    def _open(self, frame: StartFrame) -> None:
        rate = self._init_sample_rate or frame.audio_in_sample_rate or 8000
        default = "mulaw" if rate == 8000 else "linear16"
        options = self.live_options.with_audio(default, rate)
        assert options.encoding is not None and options.sample_rate is not None
        self.encoding, self.stream_sample_rate = options.encoding, options.sample_rate
        bps = bytes_per_second(self.encoding, self.stream_sample_rate, options.channels)
        self._ring = AudioRing(max(1, int(bps * self.replay_secs)))
        self.connection = LiveConnection(
            url=listen_url(self.base_url, options),
            headers=auth_headers(self._api_key.value),
            ring=self._ring,
            bytes_per_sec=bps,
            on_event=self._on_event,
            on_status=self._on_status,
            name=self.name,
            connect_timeout=self.connect_timeout_secs,
            send_timeout=self.send_timeout_secs,
            keepalive_secs=self.keepalive_secs,
            reconnect_backoff=self.reconnect_backoff_secs,
        )
        self.connection.start()

    # --- the inline audio path: cheap, never awaits -----------------------------------------

    def _feed(self, frame: InputAudioRawFrame) -> None:
        ring, conn = self._ring, self.connection
        if ring is None or conn is None:
            return
        data = self._as_stream_bytes(frame)
        if data:
            ring.append(data)
            conn.audio_ready()

    def _as_stream_bytes(self, frame: InputAudioRawFrame) -> bytes | None:
        enc, wire = self.encoding, frame.wire_audio
        if wire is not None and frame.wire_encoding == enc:
            return wire  # untouched: the line's own bytes
        pcm = frame.audio
        if wire is not None and not pcm and frame.wire_encoding in _DECODE:
            pcm = _DECODE[frame.wire_encoding](wire)  # wire mode on a linear16 stream
            self.transcoded_packets += 1
        if frame.sample_rate != self.stream_sample_rate:
            self.dropped_packets += 1
            if self.dropped_packets == 1:
                logger.error(
                    "! %s: audio at %d Hz on a %d Hz stream: dropped",
                    self.name,
                    frame.sample_rate,
                    self.stream_sample_rate,
                )
            return None
        if enc in _ENCODE:
            self.transcoded_packets += 1
            return _ENCODE[enc](pcm)
        return pcm

    # --- turns ---------------------------------------------------------------------------

    def _user_started(self) -> None:
        if self._speaking:
            return  # the VAD and the user frame both arrive
        self._speaking = True
        self._turn_text = self._turn_stage_sent = self._turn_failed = False
        self._awaiting_final = False
        if self.connection is not None and not self.connection.connected.is_set():
            self._turn_failed = True

    def _user_stopped(self) -> None:
        if not self._speaking:
            return
        self._speaking = False
        self._awaiting_final = True
        self._final_seen.clear()
        self.metrics.start_ttfb()
        if self.connection is not None:
            self.connection.send_control(FINALIZE)
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.get_running_loop().create_task(self._watch_turn(), name=f"{self.name}:turn")

    async def _watch_turn(self) -> None:
        """The audible-failure rule: no final after the stop while the STT is down or mute."""
        while self._awaiting_final:
            try:
                async with asyncio.timeout(self.finalize_timeout_secs):
                    await self._final_seen.wait()
            except TimeoutError:
                self._awaiting_final = False
                await self._turn_failure()
                return
            self._final_seen.clear()

    async def _turn_failure(self) -> None:
        conn = self.connection
        why = (conn.rejected if conn else None) or (
            "connection down" if conn and not conn.connected.is_set() else "no final transcript in time"
        )
        self.error_count += 1
        logger.warning("! %s: no transcript for the caller's turn (%s)", self.name, why)
        await self.push_error(f"{self.name}: transcription failed: {why}")
        if self.failure_text:
            await self.push_frame(TTSSpeakFrame(text=self.failure_text, append_to_context=False))

    # --- events from the connection (its receive task) -------------------------------------

    async def _on_event(self, event: DeepgramEvent, base: int) -> None:
        if isinstance(event, TranscriptEvent):
            await self._on_transcript(event)
        elif isinstance(event, UtteranceEndEvent):
            if self._turn_text and not self._speaking and not self._turn_stage_sent:
                await self._push_final("")  # Deepgram's fallback end of utterance
        elif isinstance(event, ErrorEvent):
            self.server_errors += 1
            logger.warning("! %s: Deepgram error %s", self.name, event.variant[:40])
            await self.push_error(f"{self.name}: Deepgram error {event.variant}: {event.description[:200]}")
        elif isinstance(event, ProtocolErrorEvent):
            self.protocol_errors += 1
            logger.warning("! %s: unreadable Deepgram message (%s)", self.name, event.detail)

    async def _on_transcript(self, event: TranscriptEvent) -> None:
        if not event.is_final:
            if event.transcript:
                await self.push_frame(
                    InterimTranscriptionFrame(text=event.transcript, language=self.language, timestamp=_now())
                )
            return
        if self._ring is not None and self.connection is not None:
            self._ring.mark_finalized(self.connection.offset_of(event.end))
        finalized = event.from_finalize or event.speech_final
        if event.transcript:
            await self._push_final(event.transcript, finalized=finalized)
        elif event.from_finalize and self._turn_text and not self._speaking:
            await self._push_final("")  # nothing more pending: the turn's text is complete
        if event.from_finalize or (finalized and not self._speaking):
            self._awaiting_final = False
            self._final_seen.set()

    async def _push_final(self, text: str, *, finalized: bool = True) -> None:
        frame = TranscriptionFrame(text=text, timestamp=_now(), language=self.language, finalized=finalized)
        self._turn_text = self._turn_text or bool(text)
        await self.push_frame(frame)
        if finalized and self._turn_text and not self._speaking and not self._turn_stage_sent:
            self._turn_stage_sent = True
            await self.stop_ttfb_metrics()
            await self.push_frame(LatencyStageFrame(stage="transcript", at=time.monotonic(), processor=self.name))

    async def _on_status(self, status: str, detail: str) -> None:
        if status == ConnectionStatus.CONNECTED:
            conn = self.connection
            if self._awaiting_final and conn is not None and conn.connections > 1:
                conn.send_control(FINALIZE)  # after a reconnect: the replayed audio is flushed too
            return
        self._turn_failed = True
        if status in (ConnectionStatus.DROPPED, ConnectionStatus.REJECTED):
            await self.push_error(f"{self.name}: Deepgram {status}: {detail}")

    # --- lifecycle -----------------------------------------------------------------------

    async def _close(self, *, graceful: bool) -> None:
        conn, self.connection = self.connection, None
        watchdog, self._watchdog = self._watchdog, None
        self._awaiting_final = False
        if watchdog is not None:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
        if conn is not None:
            await conn.close(graceful=graceful, timeout=self.close_timeout_secs)

    async def cleanup(self) -> None:
        await self._close(graceful=False)
        await super().cleanup()


class _Secret:
    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<secret>"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
