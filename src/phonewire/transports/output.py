"""The output side: plays the bot's audio to the caller like a phone would.

Audio frames of any rate are resampled once, straight to the wire rate, cut into the
provider's packets (``fixed_audio_packet_size`` and the provider's packet policy apply to
audio only) and queued; one pacer task sends them at media-time deadlines with a small
send-ahead lead (see ``pacer.py``). Control messages (clear, urgent transport messages)
skip the queue. The pacer task is the only sender of audio; every send goes through the
transport's single bounded send path.

Utterances end at ``TTSStoppedFrame``, at ``EndFrame`` and when the audio queue drains
(a plain ``OutputAudioRawFrame`` producer has no TTS frames); the end flushes the
resampler and packetizer tails and sends a playback mark, whose echo (or the send clock,
for providers without acknowledgements) says when the bot stopped speaking.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from phonewire.audio.packetizer import Packetizer
from phonewire.audio.resample import RateConverter
from phonewire.audio.wav import wav_header
from phonewire.exceptions import LocalProtocolError
from phonewire.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    FrameDirection,
    InterruptionFrame,
    LatencyStageFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    MetricsFrame,
    OutputAudioRawFrame,
    OutputDTMFFrame,
    OutputDTMFUrgentFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    PlaybackSource,
    StartFrame,
    TextFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSWireAudioFrame,
    TurnLatencyMetricsData,
    VADUserStoppedSpeakingFrame,
)
from phonewire.processors.frame_processor import FrameProcessor
from phonewire.transports.call_state import CloseReason
from phonewire.transports.dtmf import dtmf_tones
from phonewire.transports.pacer import Pacer
from phonewire.transports.playback import HeardReport, PlaybackTracker
from phonewire.transports.turn_latency import MAX_TURNS_KEPT, TurnLatencyTracker, TurnRecord

if TYPE_CHECKING:
    from phonewire.transports.fastapi import FastAPIWebsocketTransport

__all__ = ["FastAPIWebsocketOutputTransport"]

DOWN = FrameDirection.DOWNSTREAM
UP = FrameDirection.UPSTREAM
#: How long past the expected end of playback we wait for the provider's final mark
#: before declaring the bot stopped by our own clock.
ACK_GRACE_SECS = 1.5
#: Silence after the caller's buffer runs dry that ends an utterance with no TTSStoppedFrame.
UTTERANCE_GAP_SECS = 0.1
#: How long the end of a call waits for the hang-up before closing the socket itself.
HANGUP_BEFORE_CLOSE_SECS = 2.0

# queue item kinds (WIRE_AUDIO: a packet already in the wire encoding, sent as is)
AUDIO, END_UTT, MESSAGE, BARRIER, WIRE_AUDIO = range(5)
#: Frame types queue_frame may process on the producer's task when nothing is queued.
_INLINE = frozenset({OutputAudioRawFrame, TTSAudioRawFrame, TTSWireAudioFrame, TTSStartedFrame})


class FastAPIWebsocketOutputTransport(FrameProcessor):
    def __init__(self, transport: FastAPIWebsocketTransport, *, name: str | None) -> None:
        super().__init__(name=name)
        self._t = transport
        #: The transport's params (one object for the whole call), held for the per-frame path.
        self._params = transport.params
        self._playq: deque[tuple[int, Any, int]] = deque()  # (kind, payload, samples)
        self._queued_samples = 0
        self._wakeup = asyncio.Event()
        self._space = asyncio.Event()
        self._pacer_task: asyncio.Task[None] | None = None
        self._stop_timer: asyncio.Task[None] | None = None
        self._gap_timer: asyncio.Task[None] | None = None
        self._gap_armed = False
        self._pacer_waiting = False
        self._inline_busy = False
        self._all_played = asyncio.Event()
        self._all_played.set()
        self.bot_speaking = False
        self._started = False
        #: An LLM reply is being generated (LLMFullResponseStart seen, End not yet): the
        #: caller talking now interrupts it even though no audio is queued yet.
        self._reply_pending = False
        #: Where in the utterance the current TTS reply's audio begins (TTSTextFrame.pts_ms
        #: is relative to the reply).
        self._reply_base_ms = 0.0
        self.turns = TurnLatencyTracker()

    # --- setup ---------------------------------------------------------------------------

    def _configure(self) -> None:
        t = self._t
        fmt = t.serializer.output_format
        self.rate = fmt.sample_rate
        self._bps = fmt.bytes_per_sample
        self._converter = RateConverter(self.rate)
        self.pacer = Pacer(self.rate, t.params.audio_out_lead_secs, clock=t.clock)
        self.tracker = PlaybackTracker(
            acks=t.serializer.supports_playback_acks, mark_interval_ms=1000 * t.params.audio_out_mark_interval_secs
        )
        policy = t.serializer.packet_policy
        size, multiple, exact = policy.packet_bytes, policy.multiple_of, policy.exact
        if t.params.audio_out_10ms_chunks:
            size = fmt.bytes_for_ms(10 * t.params.audio_out_10ms_chunks)
        if t.params.fixed_audio_packet_size:
            size, exact = t.params.fixed_audio_packet_size, True
        if size % self._bps:
            raise LocalProtocolError(f"audio packet size {size} is not a whole number of {fmt.encoding} samples")
        # The packetizer works on PCM16, so encoded sizes are scaled to PCM bytes.
        scale = 2 // self._bps
        self._packetizer = Packetizer(size * scale, multiple_of=max(2, multiple * scale), exact=exact)
        # TTSWireAudioFrame audio in the wire's own encoding is cut as is (zero transcoding);
        # only G.711 qualifies, and not with WAV headers (they wrap each packet).
        self._wire_encoding = fmt.encoding if fmt.encoding != "l16" and not t.params.add_wav_header else None
        self._wire_packetizer = Packetizer(
            size, multiple_of=max(1, multiple), exact=exact, pad_byte=t.serializer.silence_byte
        )
        self._max_buffer_samples = int(t.params.audio_out_max_buffer_secs * self.rate)
        self._serializer = t.serializer
        self._encode = self._encode_with_wav_header if t.params.add_wav_header else t.serializer.encode_audio

    # --- frames --------------------------------------------------------------------------

    async def queue_frame(self, frame: Frame, direction: FrameDirection = DOWN) -> None:
        # Upstream frames pass through without touching the audio path.
        if direction is UP:
            await self.push_frame(frame, UP)
            return
        kind = type(frame)
        if (
            kind in _INLINE
            and not self._queue
            and self._current is None
            and self._task is not None
            and not self._cancelled
        ):
            # Audio (and the TTSStartedFrame just ahead of a reply's first audio) with nothing
            # queued ahead of it skips the process task: one task wake-up less per frame, order
            # unchanged (the queue is empty and nothing is in progress).
            self._current = frame
            try:
                if kind is OutputAudioRawFrame:
                    await self._on_audio(frame)  # type: ignore[arg-type]
                else:
                    await self.process_frame(frame, direction)
            except Exception as exc:  # CancelledError is a BaseException: it propagates
                await self._report_failure(frame, exc)
            finally:
                self._current = None
            return
        await super().queue_frame(frame, direction)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, StartFrame):
            self._configure()
            self._pacer_task = self._t.spawn(self._pace_loop(), "pacer")
            self._started = True
            await self.push_frame(frame, direction)
        elif isinstance(frame, OutputAudioRawFrame):
            if type(frame) is TTSWireAudioFrame:
                await self._on_wire_audio(frame)
            else:
                await self._on_audio(frame)
        elif isinstance(frame, TTSStoppedFrame):
            self._end_utterance()
            await self.push_frame(frame, direction)
        elif isinstance(frame, TextFrame):
            self._on_text(frame)
            await self.push_frame(frame, direction)
        elif isinstance(frame, InterruptionFrame):
            self._reply_pending = False
            self.turns.interrupted()
            await self._interrupt()
            await self.push_frame(frame, direction)
        elif isinstance(frame, LatencyStageFrame | VADUserStoppedSpeakingFrame):
            self._on_turn_frame(frame)
            await self.push_frame(frame, direction)
        elif isinstance(frame, LLMFullResponseStartFrame | LLMFullResponseEndFrame):
            self._reply_pending = isinstance(frame, LLMFullResponseStartFrame)
            await self.push_frame(frame, direction)
        elif isinstance(frame, TTSStartedFrame):
            self._reply_base_ms = self._utterance_end_ms()
            await self.push_frame(frame, direction)
        elif isinstance(frame, EndFrame):
            await self._end(frame)
        elif isinstance(frame, CancelFrame):
            await self._cancel()
            await self.push_frame(frame, direction)
        elif isinstance(frame, OutputTransportMessageUrgentFrame):
            await self._t.send_all(self._encode_message(frame.message))
        elif isinstance(frame, OutputTransportMessageFrame):
            self._enqueue(MESSAGE, self._encode_message(frame.message), 0)
        elif isinstance(frame, OutputDTMFUrgentFrame):
            await self._send_dtmf(frame.digits, urgent=True)
        elif isinstance(frame, OutputDTMFFrame):
            await self._send_dtmf(frame.digits, urgent=False)
        else:
            await self.push_frame(frame, direction)

    def _encode_message(self, message: Any) -> list[Any]:
        try:
            return self._t.serializer.encode_message(message)
        except LocalProtocolError as exc:
            self._t.log.warning("! transport message not sent: %s", exc)
            return []

    async def _on_audio(self, frame: OutputAudioRawFrame) -> None:
        t = self._t
        if not self._started or t.closed or not self._params.audio_out_enabled:
            return
        pcm = frame.audio
        if frame.num_channels == 2:
            pcm = _downmix(pcm)
        pcm = self._converter.convert(pcm, frame.sample_rate)
        gen = t.audio_generation
        for packet in self._packetizer.push(pcm):
            if gen != t.audio_generation:
                return  # interrupted while this frame's packets went out: the rest is cleared audio
            # The pacer is idle, nothing is queued, and this packet need not wait: then sending
            # it on the producer's task is what the pacer would do, minus a task wake-up. (Asking
            # the pacer commits it to sending now when the answer is 0, which is what happens.)
            if (
                not self._playq
                and self._pacer_waiting
                and not self._inline_busy
                and not t.closed
                and self.pacer.delay_before_send() <= 0.0
            ):
                if not self.bot_speaking:
                    self._all_played.clear()  # while the bot speaks it is clear already (_bot_started)
                self._gap_armed = False  # _cancel_gap_timer, inline: once per packet
                self._inline_busy = True
                try:
                    await self._send_audio(packet, len(packet) // 2, paced=True)
                finally:
                    self._inline_busy = False
                if self._playq:
                    self._wakeup.set()
                else:
                    self._gap_armed = True  # _on_queue_drained's common case, inline
                    if self._gap_timer is None:
                        self._on_queue_drained()
                continue
            await self._wait_for_space()
            if gen != t.audio_generation:
                return
            self._enqueue(AUDIO, packet, len(packet) // 2)

    async def _on_wire_audio(self, frame: TTSWireAudioFrame) -> None:
        """Audio already in a G.711 encoding: packetized and sent untouched when it is the
        wire's encoding and rate; otherwise decoded once and handled like any PCM."""
        if not self._started or self._t.closed or not self._params.audio_out_enabled:
            return
        if frame.encoding != self._wire_encoding or frame.sample_rate != self.rate or frame.num_channels != 1:
            from phonewire.audio.g711 import alaw_to_pcm, ulaw_to_pcm

            decode = ulaw_to_pcm if frame.encoding == "mulaw" else alaw_to_pcm
            pcm = OutputAudioRawFrame(
                audio=decode(frame.audio), sample_rate=frame.sample_rate, num_channels=frame.num_channels
            )
            await self._on_audio(pcm)
            return
        if self._packetizer.buffered:  # PCM of this utterance held back goes first
            last = self._packetizer.flush()
            if last:
                self._enqueue(AUDIO, last, len(last) // 2)
        t = self._t
        gen = t.audio_generation
        for packet in self._wire_packetizer.push(frame.audio):
            if gen != t.audio_generation:
                return  # interrupted while this frame's packets went out: the rest is cleared audio
            # As in _on_audio: the pacer is idle, nothing is queued and this packet need not
            # wait, so it goes out on the producer's task (a reply's first packet, mostly).
            if (
                not self._playq
                and self._pacer_waiting
                and not self._inline_busy
                and not t.closed
                and self.pacer.delay_before_send() <= 0.0
            ):
                if not self.bot_speaking:
                    self._all_played.clear()
                self._gap_armed = False
                self._inline_busy = True
                try:
                    await self._send_audio(packet, len(packet), paced=True, wire=True)
                finally:
                    self._inline_busy = False
                if self._playq:
                    self._wakeup.set()
                else:
                    self._gap_armed = True
                    if self._gap_timer is None:
                        self._on_queue_drained()
                continue
            await self._wait_for_space()
            if gen != t.audio_generation:
                return
            self._enqueue(WIRE_AUDIO, packet, len(packet))

    def _on_text(self, frame: TextFrame) -> None:
        queued_ms = self._queued_samples * 1000 / self.rate
        text = frame.text
        if isinstance(frame, TTSTextFrame):
            # TTS pieces are words or sentences without their separating space: keep one, so
            # heard_text reads "today. It", not "today.It".
            if text and not text[-1].isspace():
                text += " "
            if frame.pts_ms is not None:
                # Word (or sentence) timing from the TTS: place the text where its audio is,
                # however early or late the frame comes relative to that audio.
                self.tracker.add_text_at(self._reply_base_ms + frame.pts_ms, text)
                return
        self.tracker._queued_ahead_ms = queued_ms
        self.tracker.add_text(text)

    def _utterance_end_ms(self) -> float:
        """Position, in the open utterance, where audio queued now will play (0: a new one)."""
        utt = self.tracker.current
        if utt is None or utt.finished or utt.final_mark is not None:
            return 0.0
        return utt.sent_ms + self._queued_samples * 1000 / self.rate

    # --- turn latency ----------------------------------------------------------------------

    def _on_turn_frame(self, frame: LatencyStageFrame | VADUserStoppedSpeakingFrame) -> None:
        now = self._t.clock()
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            unanswered = self.turns.caller_stopped(now, frame.stop_secs)
            if unanswered is not None and unanswered.stages.get("turn_end") is not None:
                self._t.log.info("= turn %d not answered: %s", unanswered.index, unanswered.describe())
            return
        self.turns.stage(frame.stage, frame.at)

    async def _on_first_audio_sent(self, now: float) -> None:
        self.turns.stage("first_audio_sent", now)
        if not self.tracker.acks:
            await self._turn_heard(self.turns.heard(now + self.tracker.latency_s, PlaybackSource.SEND_CLOCK.value))

    async def _turn_heard(self, turn: TurnRecord | None) -> None:
        if turn is None:
            return
        turns = self._t.stats.turns
        turns.append(turn)
        if len(turns) > MAX_TURNS_KEPT:
            del turns[0]  # a long call keeps its most recent turns
        self._t.log.info("= turn %d: %s (heard by %s)", turn.index, turn.describe(), turn.heard_source)
        if self.metrics.enabled:
            data = TurnLatencyMetricsData(processor=self.name, turn=turn.index, stages=dict(turn.stages))
            await self.push_frame(MetricsFrame(data=[data]))

    def _end_utterance(self) -> None:
        """Flush the tails of this utterance and queue its end (and final mark)."""
        if not self._started:
            return
        tail = self._converter.flush()
        packets = self._packetizer.push(tail) if tail else []
        last = self._packetizer.flush()
        if last:
            packets.append(last)
        for packet in packets:
            self._enqueue(AUDIO, packet, len(packet) // 2)
        wire = self._wire_packetizer.flush()
        if wire:
            self._enqueue(WIRE_AUDIO, wire, len(wire))
        self._enqueue(END_UTT, None, 0)

    def _enqueue(self, kind: int, payload: Any, samples: int) -> None:
        self._playq.append((kind, payload, samples))
        self._queued_samples += samples
        if samples:
            self._all_played.clear()
            self._cancel_gap_timer()
        self._wakeup.set()

    async def _wait_for_space(self) -> None:
        while self._queued_samples >= self._max_buffer_samples and not self._t.closed:
            self._space.clear()
            await self._space.wait()

    # --- the pacer task ------------------------------------------------------------------

    async def _pace_loop(self) -> None:
        while True:
            if not self._playq:
                self._on_queue_drained()
                self._wakeup.clear()
                self._pacer_waiting = True
                try:
                    await self._wakeup.wait()
                finally:
                    self._pacer_waiting = False
                continue
            kind, payload, samples = self._playq.popleft()
            self._queued_samples -= samples
            self._space.set()
            if kind == AUDIO:
                await self._send_audio(payload, samples)
            elif kind == END_UTT:
                await self._send_utterance_end()
            elif kind == MESSAGE:
                await self._t.send_all(payload)
            elif kind == BARRIER:
                payload.set_result(None)
            elif kind == WIRE_AUDIO:
                await self._send_audio(payload, samples, wire=True)

    def _on_queue_drained(self) -> None:
        """A producer with no TTS frames (an echo bot) still gets utterance ends and marks:
        the utterance ends when no new audio has come by the time the caller's buffer runs
        dry (plus UTTERANCE_GAP_SECS), i.e. when the caller really stops hearing the bot."""
        self._gap_armed = True
        if self._gap_timer is None and self._utterance_open():
            # One timer task per stretch of audio, not per packet: a real-time producer drains
            # the queue after every packet, and a task per packet was the costliest thing here.
            self._gap_timer = self._t.spawn(self._gap_loop(), "utterance-gap")

    def _utterance_open(self) -> bool:
        utt = self.tracker.current
        return utt is not None and not utt.finished and utt.final_mark is None

    async def _gap_loop(self) -> None:
        """Sleeps until the caller's buffer has been dry for UTTERANCE_GAP_SECS; audio sent
        meanwhile moves that moment (the pacer knows when playout ends), new audio queued
        disarms it (a later drain starts a new timer)."""
        t = self._t
        fallback = t.clock() + UTTERANCE_GAP_SECS  # no schedule (nothing sent yet): a fixed wait
        while self._gap_armed:
            end = self.pacer.playout_end()
            wait = (fallback if end is None else end + UTTERANCE_GAP_SECS) - t.clock()
            if wait > 0:
                await t.sleep(wait)
                continue
            if not self._playq and self._utterance_open():
                self._gap_armed = False
                self._end_utterance()
            break
        self._gap_timer = None

    def _cancel_gap_timer(self) -> None:
        self._gap_armed = False  # the timer task notices when it wakes

    async def _send_audio(self, pcm: bytes, samples: int, *, paced: bool = False, wire: bool = False) -> None:
        """Send one packet at its media-time deadline (``paced``: the caller already asked
        the pacer and got 0; ``wire``: the packet is in the wire encoding already)."""
        t = self._t
        if t.closed:
            return
        tracker = self.tracker
        # Read per packet: a serializer may learn only from the stream's first message that
        # its peer cannot acknowledge playback (raw PCM behind jambonz or FreeSWITCH).
        tracker.acks = self._serializer.supports_playback_acks
        gen = t.audio_generation
        delay = 0.0 if paced else self.pacer.delay_before_send()
        if delay > 0:
            await t.sleep(delay)
            if gen != t.audio_generation:
                return  # interrupted while waiting: this packet belongs to cleared audio
        now = t.clock()
        if tracker.current is None or tracker.current.finished:
            tracker.begin_if_needed()
        if not self.bot_speaking:
            await self._bot_started()
        try:
            messages = self._serializer.encode_raw_audio(pcm) if wire else self._encode(pcm)
        except LocalProtocolError as exc:
            t.log.warning("! audio packet not sent: %s", exc)
            return
        sent = await t.send(messages[0], gen) if len(messages) == 1 else await t.send_all(messages, gen)
        if not sent:
            return
        self.pacer.on_sent(samples)
        duration_ms = samples * 1000 / self.rate
        t.stats.audio_out_ms += duration_ms
        t.stats.underruns = self.pacer.underruns
        if t.recorder is not None:  # where the caller hears it (recording/timeline.py)
            enc = self._serializer.output_format.encoding if wire else "l16"
            t.recorder.bot(pcm, self.rate, now, tracker.latency_s, enc)
        mark = self.tracker.on_audio_sent(duration_ms, now)
        if mark:
            await self._send_mark(mark)

    def _encode_with_wav_header(self, pcm: bytes) -> list[Any]:
        ser = self._serializer
        fmt = ser.output_format
        encoded = pcm if fmt.encoding == "l16" else ser.encode_wire(pcm)
        header = wav_header(len(encoded), fmt.sample_rate, 1, 8 * self._bps, fmt.codec.wav_tag)
        return ser.encode_raw_audio(header + encoded)

    async def _send_mark(self, name: str) -> None:
        if await self._t.send_all(self._t.serializer.encode_mark(name)):
            self._t.stats.marks_sent += 1

    async def _send_utterance_end(self) -> None:
        self.pacer.end_of_utterance()
        name = self.tracker.end_utterance()
        if name:
            await self._send_mark(name)
        end = self.pacer.playout_end() or self._t.clock()
        grace = ACK_GRACE_SECS if self.tracker.acks else 0.0
        self._arm_stop_timer(end + grace)

    # --- bot speaking ----------------------------------------------------------------------

    async def _bot_started(self) -> None:
        self._all_played.clear()
        if self.bot_speaking:
            return
        if self.turns.waiting_for_audio():
            await self._on_first_audio_sent(self._t.clock())
        self.bot_speaking = True
        await self.push_frame(BotStartedSpeakingFrame(), DOWN)
        await self.push_frame(BotStartedSpeakingFrame(), UP)

    async def _bot_stopped(self, source: PlaybackSource, report: HeardReport | None, interrupted: bool) -> None:
        self._all_played.set()
        if not self.bot_speaking:
            return
        self.bot_speaking = False
        kw: dict[str, Any] = {"source": source, "interrupted": interrupted}
        if report is not None:
            kw.update(heard_ms=report.heard_ms, sent_ms=report.sent_ms, heard_text=report.heard_text)
        await self.push_frame(BotStoppedSpeakingFrame(**kw), DOWN)
        await self.push_frame(BotStoppedSpeakingFrame(**kw), UP)

    def _arm_stop_timer(self, deadline: float) -> None:
        self._cancel_stop_timer()
        self._stop_timer = self._t.spawn(self._stop_after(deadline), "bot-stop-timer")

    def _cancel_timers(self) -> None:
        self._cancel_stop_timer()
        self._gap_armed = False
        timer, self._gap_timer = self._gap_timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    def _cancel_stop_timer(self) -> None:
        timer, self._stop_timer = self._stop_timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    async def _stop_after(self, deadline: float) -> None:
        await self._t.sleep(max(0.0, deadline - self._t.clock()))
        if self.tracker.acks and self.tracker.current and self.tracker.current.final_mark:
            self._t.log.info("- playback mark not echoed in time; using the send clock")
        utt = self.tracker.finish_by_clock()
        if utt is not None and not self._playq:
            report = HeardReport(
                utt.index, utt.sent_ms, utt.sent_ms, utt.heard_text(utt.sent_ms), PlaybackSource.SEND_CLOCK
            )
            await self._bot_stopped(PlaybackSource.SEND_CLOCK, report, interrupted=False)

    async def on_mark(self, name: str) -> None:
        """A playback acknowledgement arrived (called by the input side)."""
        self._t.stats.marks_acked += 1
        now = self._t.clock()
        utt = self.tracker.on_mark_acked(name, now)
        if self.turns.waiting_for_heard() and self.tracker.last_ack is not None:
            position_ms, acked_at = self.tracker.last_ack
            await self._turn_heard(self.turns.heard(acked_at - position_ms / 1000, PlaybackSource.PROVIDER_ACK.value))
        if utt is None:
            return
        self._cancel_stop_timer()
        report = HeardReport(
            utt.index, utt.sent_ms, utt.sent_ms, utt.heard_text(utt.sent_ms), PlaybackSource.PROVIDER_ACK
        )
        if not any(k == AUDIO or k == WIRE_AUDIO for k, _, _ in self._playq):
            await self._bot_stopped(PlaybackSource.PROVIDER_ACK, report, interrupted=False)

    def has_pending_audio(self) -> bool:
        """True while the caller may still be hearing (or about to hear) bot audio."""
        return self.bot_speaking or self._queued_samples > 0 or not self._all_played.is_set() or self._reply_pending

    # --- interruption, end, cancel ---------------------------------------------------------

    async def _interrupt(self) -> None:
        if not self._started:
            return
        t = self._t
        t.audio_generation += 1
        dropped = self._queued_samples
        had_audio = self.has_pending_audio()
        self._playq.clear()
        self._queued_samples = 0
        self._space.set()
        self._packetizer.clear()
        self._wire_packetizer.clear()
        self._converter.reset()
        self._cancel_timers()
        if not had_audio:
            return
        t.stats.dropped_audio_ms += dropped * 1000 / self.rate
        if await t.send_all(t.serializer.encode_clear()):
            t.stats.clears_sent += 1
        if t.recorder is not None:
            t.recorder.cut(self.tracker.latency_s)
        report = self.tracker.interrupt(t.clock())
        self.pacer.reset()
        source = report.source if report else PlaybackSource.SEND_CLOCK
        await self._bot_stopped(source, report, interrupted=True)

    async def _drain(self, deadline: float) -> bool:
        """Wait until everything queued was sent and played; False if the deadline hit."""
        t = self._t
        barrier: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._playq.append((BARRIER, barrier, 0))
        self._wakeup.set()
        try:
            async with asyncio.timeout(max(0.0, deadline - t.clock())):
                await barrier
                await self._all_played.wait()
            return True
        except TimeoutError:
            return False

    async def _end(self, frame: EndFrame) -> None:
        t = self._t
        if self._started and not t.closed:
            self._end_utterance()
            await self._queue_end_silence()
            t.begin_draining()
            if not await self._drain(t.clock() + t.params.audio_out_drain_timeout_secs):
                t.log.warning(
                    "- audio did not finish playing within %.1fs; ending anyway", t.params.audio_out_drain_timeout_secs
                )
        await self._finish(CloseReason.PIPELINE_ENDED)
        await self.push_frame(frame, DOWN)

    async def _queue_end_silence(self) -> None:
        secs = self._t.params.audio_out_end_silence_secs
        if secs <= 0:
            return
        for packet in self._packetizer.push(bytes(2 * int(self.rate * secs))):
            self._enqueue(AUDIO, packet, len(packet) // 2)
        last = self._packetizer.flush()
        if last:
            self._enqueue(AUDIO, last, len(last) // 2)
        self._enqueue(END_UTT, None, 0)

    async def _cancel(self) -> None:
        self._playq.clear()
        self._queued_samples = 0
        self._space.set()
        await self._finish(CloseReason.PIPELINE_CANCELLED)

    async def _finish(self, reason: CloseReason) -> None:
        t = self._t
        self._cancel_timers()
        task, self._pacer_task = self._pacer_task, None
        if task is not None:
            task.cancel()
        t.begin_ending()
        t.start_hangup()
        await t.wait_for_hangup(HANGUP_BEFORE_CLOSE_SECS)
        await t.close(1000, reason)

    def on_peer_gone(self) -> None:
        """The caller is gone: nothing queued can be played; release anyone waiting."""
        self._playq.clear()
        self._queued_samples = 0
        self._space.set()
        self._all_played.set()
        self._wakeup.set()

    async def on_detached(self) -> None:
        """The socket dropped and the call is held for a reconnect (``FastAPIWebsocketTransport
        ._park``): an interruption without a clear to send. What was queued is dropped, a send
        in flight is stale (a new generation), the recording is cut where the caller stopped
        hearing, and the bot's utterance ends there (BotStoppedSpeakingFrame, interrupted).
        While held, audio the bot produces is dropped as it reaches the pacer (the transport is
        "closed" to senders): a reply heard seconds late, after a reconnect, would be stale."""
        if not self._started:
            return
        t = self._t
        t.audio_generation += 1
        had_audio = self.has_pending_audio()
        self._playq.clear()
        self._queued_samples = 0
        self._space.set()
        self._packetizer.clear()
        self._wire_packetizer.clear()
        self._converter.reset()
        self._cancel_timers()
        self._all_played.set()
        self._wakeup.set()
        if not had_audio:
            return
        if t.recorder is not None:
            t.recorder.cut(self.tracker.latency_s)
        report = self.tracker.interrupt(t.clock())
        await self._bot_stopped(report.source if report else PlaybackSource.SEND_CLOCK, report, interrupted=True)

    def on_resumed(self) -> None:
        """A reconnect's socket carries the call: pacing, packet sizes and playback marks start
        afresh from the new stream's serializer (marks sent on the old socket are forgotten)."""
        if self._started:
            self._configure()

    async def _send_dtmf(self, digits: str, *, urgent: bool) -> None:
        ser = self._t.serializer
        if ser.supports_dtmf_out:
            messages = ser.encode_dtmf(digits)
            if urgent:
                await self._t.send_all(messages)
            else:
                self._enqueue(MESSAGE, messages, 0)
            return
        # No DTMF message in this protocol: play the tones in-band, in order with the audio.
        for packet in self._packetizer.push(dtmf_tones(digits, self.rate)):
            self._enqueue(AUDIO, packet, len(packet) // 2)
        self._end_utterance()

    async def cleanup(self) -> None:
        self._cancel_timers()
        await super().cleanup()
        await self._t.cleanup()


def _downmix(pcm: bytes) -> bytes:
    import numpy as np

    stereo = np.frombuffer(pcm[: len(pcm) // 4 * 4], dtype="<i2").reshape(-1, 2).astype(np.int32)
    return ((stereo[:, 0] + stereo[:, 1]) // 2).astype("<i2").tobytes()
