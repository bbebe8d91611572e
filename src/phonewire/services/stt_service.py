"""STTService and SegmentedSTTService: the caller's speech, one transcript per VAD segment.

Pipecat's names. ``SegmentedSTTService`` suits request/response recognisers (Whisper and its
compatible servers): it buffers the caller's audio between the start and stop of speech and
transcribes each segment in one request. Subclasses implement one hook::

    async def run_stt(self, audio: bytes, sample_rate: int) -> str | None

``audio`` is mono PCM16 at ``sample_rate`` (the pipeline's input rate); return the text, or
None/"" for silence. Raise to fail. (Pipecat's hook is an async generator of frames fed a WAV;
here the base class builds the frames and a subclass wraps the PCM as its API wants.)

Why it is built this way:

* Caller audio is a system frame processed inline, 50 packets a second, so the inline path
  only appends bytes to a bounded buffer (``pre_roll_secs`` kept before speech starts, so the
  first syllable the VAD needed to decide is not lost) and forwards the frame.
* A segment is transcribed in its own task, never on the inline path; segments that overlap
  (the caller speaks again while the last one is still being transcribed) run concurrently
  and their transcripts are pushed in the order spoken, by one emitter task.
* The turn knows when a pause's words are in: right after the VAD stop that ends a segment,
  ``STTSegmentSubmittedFrame(segment=n)`` (a system frame, so it follows the stop at once), and
  when segment ``n`` is transcribed, ``SegmentTranscriptionFrame(segment=n)`` - or, for
  silence, noise or a failure, ``STTSegmentEmptyFrame(segment=n)`` ("transcript in: nothing").
  The user aggregator's turn strategies wait for exactly that segment, so a transcript of an
  earlier pause arriving late is never taken for the last one, and noise does not make the
  turn wait its transcript timeout. Both result frames survive an interruption's queue flush:
  the caller's words are never dropped.
* A speculative transcript: when the VAD reports that the caller *may* be stopping
  (``VADUserStoppingFrame``, at ``VADParams.early_stop_secs`` of silence, 0.1 s in
  ``TURN_ANALYZER_VAD_PARAMS``) the speech so far is sent at once, without ending the segment;
  the buffer keeps growing. If the VAD then confirms the stop, that request *becomes* the
  segment (numbered, announced, its result awaited like any other): the transcript has been
  running through the rest of the stop wait. If the caller goes on, nothing is announced and its
  result is never pushed; the next early report or segment supersedes it (cancelled), and the
  resumed segment's own request carries that audio again. ``speculative=False`` turns it off.
* A failure is heard, not silent: after the bounded retry, ``ErrorFrame`` upstream,
  ``error_count += 1`` and ``TTSSpeakFrame(failure_text, append_to_context=False)``
  downstream, so the TTS asks the caller to repeat and the call goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from phonewire.frames import (
    CancelFrame,
    ControlFrame,
    EndFrame,
    Frame,
    FrameDirection,
    InputAudioRawFrame,
    LatencyStageFrame,
    StartFrame,
    SystemFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    UninterruptibleFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
    VADUserStoppingFrame,
)
from phonewire.processors.frame_processor import FrameProcessor

__all__ = [
    "DEFAULT_STT_FAILURE_TEXT",
    "STTResult",
    "STTSegmentEmptyFrame",
    "STTSegmentSubmittedFrame",
    "STTService",
    "SegmentTranscriptionFrame",
    "SegmentedSTTService",
]

logger = logging.getLogger("phonewire.services.stt")

DOWNSTREAM = FrameDirection.DOWNSTREAM
DEFAULT_STT_FAILURE_TEXT = "Sorry, I didn't catch that. Could you say it again?"
_STARTS = (UserStartedSpeakingFrame, VADUserStartedSpeakingFrame)
_STOPS = (UserStoppedSpeakingFrame, VADUserStoppedSpeakingFrame)


@dataclass(slots=True, frozen=True)
class STTResult:
    text: str | None
    error: BaseException | None
    finalized: bool
    segment: int = 0  # a SegmentedSTTService's segment number (0: not the end of a segment)


@dataclass(slots=True, kw_only=True)
class STTSegmentSubmittedFrame(SystemFrame):
    """A segmented STT started transcribing segment ``segment`` (the speech up to the VAD stop
    just before this frame); its result follows as a :class:`SegmentTranscriptionFrame` or an
    :class:`STTSegmentEmptyFrame` with the same number."""

    segment: int


@dataclass(slots=True, kw_only=True)
class SegmentTranscriptionFrame(TranscriptionFrame, UninterruptibleFrame):
    """The transcript of one VAD segment, transcribed alone. Its punctuation is the recogniser's
    guess for that fragment (Whisper ends a fragment it hears alone with a full stop), which
    the turn strategies weigh less than a streaming STT's final."""

    segment: int = 0


@dataclass(slots=True, kw_only=True)
class STTSegmentEmptyFrame(ControlFrame, UninterruptibleFrame):
    """Segment ``segment`` was transcribed and held no words (silence, noise, or a failure)."""

    segment: int


class STTService(FrameProcessor):
    """What every STT shares: language, ``run_stt``, the retry policy, counters, and how a
    transcript or a failure becomes frames."""

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        language: str | None = None,
        audio_passthrough: bool = True,
        request_timeout_secs: float = 4.0,
        max_retries: int = 1,
        retry_backoff_secs: float = 0.1,
        failure_text: str | None = DEFAULT_STT_FAILURE_TEXT,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self._init_sample_rate = sample_rate
        self.language = language
        self.audio_passthrough = audio_passthrough
        self.request_timeout_secs = request_timeout_secs
        self.max_retries = max_retries
        self.retry_backoff_secs = retry_backoff_secs
        self.failure_text = failure_text
        #: Segments that failed for good (each pushed an ErrorFrame and the failure text).
        self.error_count = 0
        self.retry_count = 0

    async def run_stt(self, audio: bytes, sample_rate: int) -> str | None:
        raise NotImplementedError

    def is_retryable(self, error: BaseException) -> bool:
        return True

    async def start(self, frame: StartFrame) -> None:
        """Called at the StartFrame: open clients here."""

    async def transcribe(
        self, audio: bytes, sample_rate: int, *, finalized: bool = True, segment: int = 0
    ) -> STTResult:
        """``run_stt`` under a deadline per attempt, retried once (bounded) when allowed."""
        attempt = 0
        while True:
            attempt += 1
            try:
                async with asyncio.timeout(self.request_timeout_secs):
                    text = await self.run_stt(audio, sample_rate)
                return STTResult(text.strip() if text else None, None, finalized, segment)
            except Exception as exc:  # CancelledError is a BaseException: it propagates
                if attempt > self.max_retries or not self.is_retryable(exc):
                    return STTResult(None, exc, finalized, segment)
                self.retry_count += 1
                logger.info("~ %s retrying a transcription after %r", self.name, exc)
                await asyncio.sleep(self.retry_backoff_secs)

    async def push_result(self, result: STTResult) -> None:
        if result.error is not None:
            self.error_count += 1
            logger.warning("! %s: transcription failed: %r", self.name, result.error)
            await self.push_error(f"{self.name}: transcription failed: {result.error}", exception=result.error)
            if self.failure_text:
                await self.push_frame(TTSSpeakFrame(text=self.failure_text, append_to_context=False))
            if result.segment:
                await self.push_frame(STTSegmentEmptyFrame(segment=result.segment))
            return
        if not result.text:
            logger.debug("- %s: empty transcript", self.name)
            if result.segment:
                await self.push_frame(STTSegmentEmptyFrame(segment=result.segment))
            return
        await self.stop_ttfb_metrics()
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        frame: TranscriptionFrame
        if result.segment:
            frame = SegmentTranscriptionFrame(
                text=result.text, user_id="", timestamp=stamp, language=self.language, finalized=result.finalized,
                segment=result.segment,
            )  # fmt: skip
        else:
            frame = TranscriptionFrame(
                text=result.text, user_id="", timestamp=stamp, language=self.language, finalized=result.finalized
            )
        await self.push_frame(frame)
        await self.push_frame(LatencyStageFrame(stage="transcript", at=time.monotonic(), processor=self.name))


class SegmentedSTTService(STTService):
    """Transcribes each stretch of speech between the VAD's start and stop frames.

    ``pre_roll_secs`` of audio before the start frame is kept; a segment longer than
    ``max_segment_secs`` is sent as it stands (``finalized=False``) and buffering goes on;
    at most ``max_pending`` segments are in flight (beyond that one is dropped, logged, counted
    in ``dropped_segments``). ``speculative``: start a segment's request at the VAD's early stop
    report (``VADUserStoppingFrame``) and keep it only if the stop is confirmed (see the module
    docstring); without such reports (``VADParams.early_stop_secs=0``) it changes nothing.
    """

    #: Audio after the speculative request, beyond the expected rest of the stop wait, that
    #: shows the stop confirmed is not the one that request was made at (then it is not used).
    SPECULATIVE_SLACK_SECS = 0.1

    def __init__(
        self,
        *,
        pre_roll_secs: float = 0.3,
        max_segment_secs: float = 30.0,
        max_pending: int = 4,
        speculative: bool = True,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.pre_roll_secs = pre_roll_secs
        self.max_segment_secs = max_segment_secs
        self.max_pending = max_pending
        self.speculative = speculative
        self.dropped_segments = 0
        #: Speculative requests made / kept as their segment's transcript / dropped (the caller went on).
        self.speculative_submitted = 0
        self.speculative_used = 0
        self.speculative_dropped = 0
        #: Segments ended by a VAD stop so far (their number, in STTSegmentSubmittedFrame).
        self.segments_submitted = 0
        self._buffer = bytearray()
        self._rate = 0
        self._pre_roll_bytes = 0
        self._max_bytes = 0
        self._speaking = False
        self._spec: asyncio.Task[STTResult] | None = None  # the speculative request in flight
        self._spec_bytes = 0  # the buffer's length when it was made
        self._spec_silence = 0.0  # the silence it was made at
        self._pending: deque[tuple[asyncio.Task[STTResult], int]] = deque()  # (request, segment)
        self._pending_changed = asyncio.Event()
        self._emitter: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self._append(frame)
            if self.audio_passthrough:
                await self.push_frame(frame, direction)
            return
        if isinstance(frame, _STARTS):
            self._speaking = True
        elif isinstance(frame, VADUserStoppingFrame):
            if self._speaking and self.speculative:
                self._speculate(frame.silence_secs)
        elif isinstance(frame, _STOPS):
            if self._speaking:
                self._speaking = False
                stop_secs = frame.stop_secs if isinstance(frame, VADUserStoppedSpeakingFrame) else None
                spec = self._confirm_speculation(stop_secs)
                segment = self._submit(finalized=True, task=spec)
                if segment:
                    await self.push_frame(frame, direction)
                    await self.push_frame(STTSegmentSubmittedFrame(segment=segment), direction)
                    if spec is not None:  # queued only now: its result may be in already, and
                        self._pending.append((spec, segment))  # must follow the announcement
                        self._pending_changed.set()
                    return
        elif isinstance(frame, StartFrame):
            self._set_rate(self._init_sample_rate or frame.audio_in_sample_rate or 0)
            await self.start(frame)
            self._start_emitter()
        elif isinstance(frame, EndFrame):
            await self._drain()
        elif isinstance(frame, CancelFrame):
            await self._stop()
        await self.push_frame(frame, direction)

    # --- the inline path: cheap ------------------------------------------------------------

    def _set_rate(self, rate: int) -> None:
        self._drop_speculation()
        self._rate = rate
        self._pre_roll_bytes = int(self.pre_roll_secs * rate) * 2
        self._max_bytes = int(self.max_segment_secs * rate) * 2
        self._buffer.clear()

    def _append(self, frame: InputAudioRawFrame) -> None:
        if frame.sample_rate != self._rate:
            self._set_rate(frame.sample_rate)
        buf = self._buffer
        buf += frame.audio  # phone audio is mono
        if not self._speaking:
            excess = len(buf) - self._pre_roll_bytes
            if excess > 0:
                del buf[:excess]
        elif len(buf) >= self._max_bytes:
            self._drop_speculation()
            self._submit(finalized=False)

    def _submit(self, *, finalized: bool, task: asyncio.Task[STTResult] | None = None) -> int:
        """Start transcribing the buffer (or adopt ``task``, a speculative request for it); the
        segment's number (0: nothing will be reported)."""
        audio, self._buffer = bytes(self._buffer), bytearray()
        if not audio:
            if task is not None:
                task.cancel()
            return 0
        if len(self._pending) >= self.max_pending:
            self.dropped_segments += 1
            logger.warning("! %s: %d segments still transcribing, one dropped", self.name, len(self._pending))
            if task is not None:
                task.cancel()
            return 0
        if not self._pending:
            self.metrics.start_ttfb()
        segment = 0
        if finalized:
            self.segments_submitted += 1
            segment = self.segments_submitted
        if task is not None:
            return segment  # the caller queues it once the segment is announced
        task = asyncio.get_running_loop().create_task(
            self.transcribe(audio, self._rate, finalized=finalized, segment=segment), name=f"{self.name}:transcribe"
        )
        self._pending.append((task, segment))
        self._pending_changed.set()
        return segment

    # --- the speculative transcript --------------------------------------------------------

    def _speculate(self, silence_secs: float) -> None:
        """The caller may be stopping: send the speech so far now, keep buffering."""
        self._drop_speculation()  # an earlier one: the caller went on after it
        if not self._buffer or len(self._pending) >= self.max_pending:
            return
        self.speculative_submitted += 1
        self._spec_bytes, self._spec_silence = len(self._buffer), silence_secs
        self._spec = asyncio.get_running_loop().create_task(
            self.transcribe(bytes(self._buffer), self._rate, finalized=True), name=f"{self.name}:speculative"
        )

    def _confirm_speculation(self, stop_secs: float | None) -> asyncio.Task[STTResult] | None:
        """At a stop: the speculative request, if it covers this segment's speech (the audio
        after it is no longer than the rest of the stop wait), else None (dropped)."""
        spec = self._spec
        if spec is None:
            return None
        rest = max(0.0, (stop_secs or 0.0) - self._spec_silence) + self.SPECULATIVE_SLACK_SECS
        if stop_secs is None or len(self._buffer) - self._spec_bytes > int(rest * self._rate) * 2:
            self._drop_speculation()
            return None
        self._spec = None
        self.speculative_used += 1
        return spec

    def _drop_speculation(self) -> None:
        spec, self._spec = self._spec, None
        if spec is not None:
            spec.cancel()  # its words come again in the segment's own request
            self.speculative_dropped += 1

    # --- the emitter: transcripts in the order spoken -------------------------------------

    def _start_emitter(self) -> None:
        if self._emitter is None:
            self._emitter = asyncio.get_running_loop().create_task(self._emit_loop(), name=f"{self.name}:emitter")

    async def _emit_loop(self) -> None:
        while True:
            while not self._pending:
                self._pending_changed.clear()
                await self._pending_changed.wait()
            task, segment = self._pending[0]
            result = await task  # bounded by request_timeout_secs per attempt
            self._pending.popleft()
            if result.segment != segment:
                result = replace(result, segment=segment)  # a speculative request, numbered at its stop
            await self.push_result(result)
            self._pending_changed.set()

    async def _drain(self) -> None:
        """At the EndFrame: let segments in flight finish (bounded) so no transcript is lost."""
        bound = self.request_timeout_secs * (1 + self.max_retries) + 1.0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(bound):
                while self._pending and self._emitter is not None:
                    self._pending_changed.clear()
                    await self._pending_changed.wait()

    async def _stop(self) -> None:
        emitter, self._emitter = self._emitter, None
        spec, self._spec = self._spec, None
        tasks = [t for t in (emitter, spec, *(p[0] for p in self._pending)) if t is not None]
        self._pending.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def cleanup(self) -> None:
        await self._stop()
        await super().cleanup()
