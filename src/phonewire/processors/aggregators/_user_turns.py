"""The user aggregator's strategy mode and its mute/idle policies (a mixin of LLMUserAggregator).

Kept apart from ``user.py`` so the transcript-rule mode there stays readable. The sans-I/O state
lives in :class:`phonewire.turns.controller.UserTurnController`; this mixin does the I/O: frames
in and out, the analysis task (one per call, its verdict dropped when stale), the idle timer.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from phonewire.audio.codecs import codec_for
from phonewire.frames import (
    Frame,
    FrameDirection,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    InterruptionTaskFrame,
    LatencyStageFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
    VADUserStoppingFrame,
)
from phonewire.processors.aggregators._base import BoundedText, ContextAggregator, logger
from phonewire.services.stt_service import SegmentTranscriptionFrame, STTSegmentEmptyFrame, STTSegmentSubmittedFrame
from phonewire.turns.controller import UserTurnController
from phonewire.turns.user_idle import UserIdleTimer
from phonewire.turns.user_mute import UserMuteState

__all__ = ["ANALYSIS_TIMEOUT_SECS", "StrategyTurnMixin", "UserTurnStoppedMessage", "pcm_of"]

DOWN, UP = FrameDirection.DOWNSTREAM, FrameDirection.UPSTREAM
#: Longest wait for a turn analyzer's verdict; then the strategies decide without it.
ANALYSIS_TIMEOUT_SECS = 1.0
#: A VAD that confirms silence slower than this delays every strategy decision by the excess.
_SLOW_VAD_STOP_SECS = 0.35


def pcm_of(frame: InputAudioRawFrame) -> bytes:
    """The caller's audio as PCM16. In wire mode (a Deepgram or Realtime pipeline that takes the
    line's G.711 untouched) ``audio`` is empty and the payload is in ``wire_audio``: a turn
    analyzer or VAD here must decode it (one table lookup a byte), or it hears silence."""
    if frame.audio or not frame.wire_audio or frame.wire_encoding is None:
        return frame.audio
    return codec_for(frame.wire_encoding).decode(frame.wire_audio)


@dataclass(slots=True, kw_only=True)
class UserTurnStoppedMessage:
    """What ``on_user_turn_stopped`` reports: the user message's text and when (ISO 8601, UTC)."""

    content: str
    timestamp: str


class StrategyTurnMixin(ContextAggregator):
    """Base of LLMUserAggregator: the attributes below are set by its constructor."""

    _params: Any
    _turns: UserTurnController | None
    _text: BoundedText
    _vad: Any
    _idle: UserIdleTimer | None
    _analysis: asyncio.Task[None] | None
    _bot_speaking: bool
    _bot_turns: int
    _allow_interruptions: bool
    _in_turn: bool
    verdicts: deque[Any]
    _warned_slow_vad = False
    #: The text of the turn that ended last, while its reply may still be taken back.
    _last_turn_text: str | None = None

    def _reschedule(self) -> None:
        raise NotImplementedError

    async def _strategy_frame(self, frame: Frame, direction: FrameDirection) -> bool:
        """Handle ``frame`` under turn strategies; True if it was handled (pushed or consumed)."""
        if direction is not DOWN:
            return False
        if isinstance(frame, VADUserStartedSpeakingFrame | VADUserStoppedSpeakingFrame):
            await self.push_frame(frame, direction)
            if self._vad is None:
                if isinstance(frame, VADUserStartedSpeakingFrame):
                    await self._speech_started()
                else:
                    await self._speech_stopped(frame.stop_secs)
            return True
        if isinstance(frame, VADUserStoppingFrame):
            await self.push_frame(frame, direction)
            if self._vad is None:
                self._speech_stopping(frame.silence_secs)
            return True
        if isinstance(frame, UserStartedSpeakingFrame | UserStoppedSpeakingFrame):
            return True  # the transport's per-pause frames: this aggregator emits the turn's own
        assert self._turns is not None
        if isinstance(frame, STTSegmentSubmittedFrame):
            self._turns.segment_submitted(frame.segment)
            self._reschedule()
            return True
        if isinstance(frame, STTSegmentEmptyFrame):
            await self._turn_event(self._turns.segment_result(frame.segment, "", time.monotonic(), self._bot_speaking))
            return True
        if isinstance(frame, TranscriptionFrame):
            text = frame.text.strip()
            if text:
                self._text.add(text)
            now = time.monotonic()
            if isinstance(frame, SegmentTranscriptionFrame) and frame.segment:
                started = self._turns.segment_result(frame.segment, text, now, self._bot_speaking)
            else:
                started = self._turns.transcript(text, frame.finalized, now, self._bot_speaking)
            await self._turn_event(started)
            return True
        if isinstance(frame, InterimTranscriptionFrame):
            assert self._turns is not None
            await self._turn_event(self._turns.interim(self._bot_speaking))
            return True
        return False

    async def _speech_started(self) -> None:
        assert self._turns is not None
        if self._idle is not None:
            self._idle.disarm()
        await self._turn_event(self._turns.speech_started(self._bot_speaking))

    def _speech_stopping(self, silence_secs: float) -> None:
        """The VAD's early stop report: the verdict is computed speculatively from here."""
        assert self._turns is not None
        if self._turns.speech_stopping():
            self._start_analysis(self._turns.seq, silence_secs=silence_secs)

    async def _speech_stopped(self, stop_secs: float) -> None:
        assert self._turns is not None
        if stop_secs > _SLOW_VAD_STOP_SECS and not self._warned_slow_vad and self._turns.analyzer is not None:
            self._warned_slow_vad = True
            logger.warning(
                "- %s: the VAD confirms silence after %.2fs; a turn analyzer decides after that."
                " Use VADParams(stop_secs=0.2) for quick turns.", self.name, stop_secs,
            )  # fmt: skip
        if self._turns.speech_stopped(time.monotonic(), stop_secs):
            self._start_analysis(self._turns.seq)
        self._reschedule()

    async def _turn_event(self, started: bool) -> None:
        if started:
            self._call_event_handler("on_user_turn_started")
            await self.push_frame(UserStartedSpeakingFrame(), DOWN)
            p = self._params
            if self._allow_interruptions and p.interrupt_while_generating and self._shared.generating:
                if not self._bot_speaking:
                    logger.debug("= %s: caller spoke while the reply was generated: interrupting", self.name)
                    self._shared.generating = False
                    await self.push_frame(InterruptionTaskFrame(), UP)
                    self._reopen_last_turn()
        self._reschedule()

    def _reopen_last_turn(self) -> None:
        """The caller went on before hearing any of the reply to the turn that just ended, so
        that turn was not over: its message leaves the context and its words start the turn
        now beginning (the next decision, and the LLM, see everything the caller said)."""
        last, self._last_turn_text = self._last_turn_text, None
        messages = self._context.messages
        if not last or not messages or messages[-1] != {"role": "user", "content": last}:
            return
        assert self._turns is not None
        self._context.set_messages(messages[:-1])
        self._text.prepend(last)
        self._turns.reopen(len(last.split()))
        logger.info("= %s: the caller went on before the reply was heard: the turn continues", self.name)

    # --- the analyzer ----------------------------------------------------------------------

    def _feed_analyzer(self, frame: InputAudioRawFrame) -> None:
        analyzer: Any = self._turns.analyzer if self._turns is not None else None
        if analyzer is None:
            return
        if analyzer.sample_rate != frame.sample_rate:
            analyzer.set_sample_rate(frame.sample_rate)
        analyzer.append_audio(pcm_of(frame), self._turns is not None and self._turns.speaking)

    def _start_analysis(self, seq: int, *, silence_secs: float | None = None) -> None:
        previous = self._analysis
        if previous is not None and not previous.done():
            previous.cancel()  # stale; a queued inference is dropped, a running one ignored
        self._analysis = asyncio.get_running_loop().create_task(
            self._analyse(seq, silence_secs), name=f"{self.name}:turn-analysis"
        )

    async def _analyse(self, seq: int, silence_secs: float | None = None) -> None:
        assert self._turns is not None
        analyzer: Any = self._turns.analyzer
        verdict = None
        try:
            async with asyncio.timeout(ANALYSIS_TIMEOUT_SECS):
                verdict = await (
                    analyzer.analyze_end_of_turn()
                    if silence_secs is None
                    else analyzer.analyze_end_of_turn(silence_secs=silence_secs)
                )
        except TimeoutError:
            logger.warning("- %s: the turn analyzer took too long; deciding without it", self.name)
        except Exception as exc:  # busy queue, model failure: the silence/transcript rules decide
            logger.warning("- %s: turn analysis failed (%r); deciding without it", self.name, exc)
        if verdict is not None:
            self.verdicts.append(verdict)
            logger.debug("= %s: turn verdict %s p=%.2f (%.0f ms)", self.name, verdict.state.name,
                         verdict.probability, verdict.e2e_ms)  # fmt: skip
        if self._turns.verdict_arrived(seq, verdict):
            self._reschedule()

    async def _end_strategy_turn(self) -> None:
        assert self._turns is not None
        text = self._text.words()
        self._text.clear()
        started = self._turns.in_turn
        self._turns.turn_ended()
        if started:
            await self.push_frame(UserStoppedSpeakingFrame(), DOWN)
        if not text:
            logger.debug("= %s: a turn without words (noise?): nothing runs", self.name)
            return
        self._context.add_message({"role": "user", "content": text})
        self._last_turn_text = text
        logger.debug("= %s: user turn ended: %d chars", self.name, len(text))
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        self._call_event_handler("on_user_turn_stopped", UserTurnStoppedMessage(content=text, timestamp=stamp))
        await self.push_frame(LatencyStageFrame(stage="turn_end", at=time.monotonic(), processor=self.name))
        await self.push_context_frame()

    # --- mute and idle -----------------------------------------------------------------------

    def _muted(self) -> bool:
        state = UserMuteState(
            bot_speaking=self._bot_speaking, bot_turns_completed=self._bot_turns,
            function_calls_in_progress=len(self._shared.function_calls),
        )  # fmt: skip
        return any(s.is_muted(state) for s in self._params.user_mute_strategies)

    def _in_user_turn(self) -> bool:
        return self._turns.in_turn if self._turns is not None else self._in_turn

    def _maybe_arm_idle(self) -> None:
        if self._idle is not None and not self._in_user_turn():
            self._idle.arm()

    async def _on_idle(self) -> None:
        if self._in_user_turn() or self._bot_speaking:
            return
        logger.info("= %s: caller silent for %.1fs after the bot", self.name, self._params.user_idle_timeout or 0)
        self._call_event_handler("on_user_turn_idle")
        prompt = self._params.user_idle_prompt
        if prompt:
            self._context.add_message({"role": "system", "content": prompt})
            await self.push_context_frame()

    async def _stop_tasks(self) -> None:
        if self._idle is not None:
            await self._idle.stop()
        task, self._analysis = self._analysis, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
