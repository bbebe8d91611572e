"""LLMUserAggregator: the caller's turn, from transcripts to one user message and an LLM run.

Placed right after the STT. It gathers final ``TranscriptionFrame``s between the transport's
``UserStartedSpeakingFrame`` and ``UserStoppedSpeakingFrame`` (transcripts are consumed: the
LLM gets them through the context) and, when the turn ends, appends
``{"role": "user", "content": text}`` and pushes ``LatencyStageFrame("turn_end")`` and
``LLMContextFrame`` downstream.

When does a turn end? The final transcript often comes *after* the VAD stop (a per-turn STT such
as Whisper transcribes only then; streaming STTs finalise late), so after the stop:

* text of this speech segment is complete - a ``TranscriptionFrame(finalized=True)`` came, or
  text came and nothing more within ``aggregation_timeout`` (0.15 s) - : run;
* otherwise (no text yet, or an ``InterimTranscriptionFrame`` still waits for its final) wait,
  at most ``transcript_timeout_secs`` (1.5 s) after the stop, then run with what there is; a turn
  with no text at all is noise: nothing runs (logged at debug).

A caller who starts again while the aggregator waits continues the same turn. Without VAD frames
(an STT with its own endpointing) a transcript ends the turn when ``finalized`` or after
``aggregation_timeout`` of quiet. Interim transcripts never enter the context.

Interruptions: the transport's barge-in stops bot audio it holds. A caller who starts talking
while the LLM is still generating (no bot audio yet) is phonewire's addition: the aggregator
pushes ``InterruptionTaskFrame`` upstream (``interrupt_while_generating``), so the reply in
flight is cancelled instead of being spoken over the caller. An ``InterruptionFrame`` never
discards the caller's words - they are what interrupted.

``vad_analyzer=`` (Pipecat 1.x puts the VAD here): accepted and run. The aggregator then analyses
the ``InputAudioRawFrame``s itself, broadcasts ``VADUserStarted/StoppedSpeakingFrame`` and
``UserStarted/StoppedSpeakingFrame`` (both directions) and, when the caller starts over the bot,
pushes ``InterruptionTaskFrame`` upstream. Prefer ``vad_analyzer`` in the transport params:
there the VAD is batched across calls and the barge-in policy (minimum speech, pending audio)
applies. With a VAD in both places the aggregator follows its own and warns once.

Turn strategies (``user_turn_strategies=UserTurnStrategies(...)``, docs/turn-taking.md): the
rules above are replaced by the strategies' (:mod:`phonewire.turns`). The aggregator then owns
the turn's end: the VAD's ``VADUserStarted/StoppedSpeakingFrame`` mark *pauses* (use
``VADParams(stop_secs=0.2)``), the transport's ``UserStarted/StoppedSpeakingFrame`` are consumed,
and the aggregator pushes its own downstream when the *turn* starts and ends - so everything after
it sees one start and one stop per caller turn, while an STT before it transcribes per pause (the
texts are joined). A turn analyzer (Smart Turn) runs at each pause on a worker thread, never on
the event loop; its verdict is discarded when the caller goes on.

``user_mute_strategies``: while one says muted the caller is ignored (transcripts dropped, no turn,
the transport's ``InterruptionFrame`` stops here). ``user_idle_timeout``: the caller said nothing
that long after the bot finished: ``on_user_turn_idle(aggregator)`` fires and, with
``user_idle_prompt``, that prompt is added as a system message and the LLM runs.

Events: ``on_user_turn_started(aggregator)``, ``on_user_turn_stopped(aggregator, message)``
(``message`` a :class:`UserTurnStoppedMessage`), ``on_user_turn_idle(aggregator)``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from phonewire.exceptions import ConfigurationError
from phonewire.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    FrameDirection,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    InterruptionTaskFrame,
    LatencyStageFrame,
    LLMRunFrame,
    StartFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from phonewire.processors.aggregators._base import (
    DEFAULT_MAX_TURN_CHARS,
    BoundedText,
    SharedTurnState,
    logger,
)
from phonewire.processors.aggregators._user_turns import (
    ANALYSIS_TIMEOUT_SECS,
    StrategyTurnMixin,
    UserTurnStoppedMessage,
    pcm_of,
)
from phonewire.processors.aggregators.llm_context import LLMContext
from phonewire.services.stt_service import SegmentTranscriptionFrame, STTSegmentEmptyFrame, STTSegmentSubmittedFrame
from phonewire.turns.controller import UserTurnController
from phonewire.turns.user_idle import UserIdleTimer
from phonewire.turns.user_mute import BaseUserMuteStrategy
from phonewire.turns.user_turn_strategies import UserTurnStrategies

__all__ = ["ANALYSIS_TIMEOUT_SECS", "LLMUserAggregator", "LLMUserAggregatorParams", "UserTurnStoppedMessage"]

UP, DOWN = FrameDirection.UPSTREAM, FrameDirection.DOWNSTREAM
_VAD_RATE = 16000  # what a VAD that refuses the pipeline rate is fed instead
_MUTED_DROPS = (
    InterruptionFrame,
    TranscriptionFrame,
    InterimTranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)


@dataclass(slots=True, kw_only=True)
class LLMUserAggregatorParams:
    """How the user aggregator decides a turn is over. Unknown arguments raise TypeError."""

    #: Quiet after the last transcript (or after the VAD stop) that makes the text complete.
    aggregation_timeout: float = 0.15
    #: Longest wait for a transcript after the VAD stop; then the turn runs (or is noise).
    transcript_timeout_secs: float = 1.5
    #: Cap on one turn's text, in characters (longer text is cut, logged).
    max_turn_chars: int = DEFAULT_MAX_TURN_CHARS
    #: Cancel a reply still being generated when the caller starts talking.
    interrupt_while_generating: bool = True
    #: Run this VAD on the audio here (Pipecat 1.x's place); see the module docstring.
    vad_analyzer: Any = None
    #: Start/stop strategies (phonewire.turns); None keeps the transcript rules above.
    user_turn_strategies: UserTurnStrategies | None = None
    #: While any of these says muted, the caller is ignored.
    user_mute_strategies: list[BaseUserMuteStrategy] = field(default_factory=list)
    #: Seconds of caller silence after the bot finished before ``on_user_turn_idle``.
    user_idle_timeout: float | None = None
    #: With ``user_idle_timeout``: added as a system message, then the LLM runs.
    user_idle_prompt: str | None = None

    def __post_init__(self) -> None:
        for name in ("aggregation_timeout", "transcript_timeout_secs"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 < value <= 30:
                raise ConfigurationError(f"LLMUserAggregatorParams({name}={value!r}): use seconds in (0, 30]")
        if self.transcript_timeout_secs < self.aggregation_timeout:
            raise ConfigurationError("LLMUserAggregatorParams: transcript_timeout_secs < aggregation_timeout")
        if self.max_turn_chars < 1:
            raise ConfigurationError(f"LLMUserAggregatorParams(max_turn_chars={self.max_turn_chars}): must be >= 1")
        if self.user_idle_timeout is not None and not 0 < self.user_idle_timeout <= 600:
            raise ConfigurationError(f"LLMUserAggregatorParams(user_idle_timeout={self.user_idle_timeout}): (0, 600]")
        strategies = self.user_turn_strategies
        if strategies is not None and not isinstance(strategies, UserTurnStrategies):
            raise ConfigurationError(
                f"LLMUserAggregatorParams(user_turn_strategies={strategies!r}): not a UserTurnStrategies"
            )
        vad = self.vad_analyzer
        if vad is not None and not all(hasattr(vad, a) for a in ("analyze", "set_sample_rate", "params")):
            raise ConfigurationError(
                f"LLMUserAggregatorParams(vad_analyzer={vad!r}): not a VAD analyzer (e.g. SileroVADAnalyzer())"
            )


class LLMUserAggregator(StrategyTurnMixin):
    def __init__(
        self,
        context: LLMContext,
        *,
        params: LLMUserAggregatorParams | None = None,
        shared: SharedTurnState | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(context, shared=shared, name=name)
        self._params = params or LLMUserAggregatorParams()
        self._text = BoundedText(self._params.max_turn_chars, "the caller's turn")
        self._speaking = False
        self._in_turn = False  # a started turn (VAD or transcript) not yet ended
        self._stopped_at: float | None = None  # VAD stop of the current turn, while waiting
        self._segment_text = False  # a final transcript since the latest UserStartedSpeaking
        self._segment_final = False
        self._interim_pending = False
        self._last_text_at = 0.0
        self._timer: asyncio.Task[None] | None = None
        self._due: float | None = None
        self._wake = asyncio.Event()
        self._allow_interruptions = True
        self._bot_speaking = False
        self._vad = self._params.vad_analyzer
        self._vad_converter: Any = None
        self._warned_double_vad = False
        p = self._params
        self._turns: UserTurnController | None = None
        if p.user_turn_strategies is not None:
            self._turns = UserTurnController(
                p.user_turn_strategies, aggregation_timeout=p.aggregation_timeout,
                transcript_timeout=p.transcript_timeout_secs,
            )  # fmt: skip
        self._analysis: asyncio.Task[None] | None = None
        #: The turn analyzer's recent verdicts (for logs, tests and benchmarks).
        self.verdicts: deque[Any] = deque(maxlen=64)
        self._bot_turns = 0
        self._idle: UserIdleTimer | None = None
        if p.user_idle_timeout is not None:
            self._idle = UserIdleTimer(p.user_idle_timeout, self._on_idle, name=self.name)
        self._register_event_handler("on_user_turn_started")
        self._register_event_handler("on_user_turn_stopped")
        self._register_event_handler("on_user_turn_idle")

    @property
    def params(self) -> LLMUserAggregatorParams:
        return self._params

    # --- frames ------------------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            await self.push_frame(frame, direction)
            if direction is DOWN:
                self._feed_analyzer(frame)
                if self._vad is not None:
                    await self._analyze(frame)
            return
        if self._params.user_mute_strategies and isinstance(frame, _MUTED_DROPS) and self._muted():
            logger.debug("- %s: caller muted: %s dropped", self.name, type(frame).__name__)
            if isinstance(frame, SegmentTranscriptionFrame) and self._turns is not None:  # the segment is in
                self._turns.segment_result(frame.segment, "", time.monotonic(), self._bot_speaking)
                self._reschedule()
            return
        if self._turns is not None and await self._strategy_frame(frame, direction):
            return
        if isinstance(frame, STTSegmentSubmittedFrame):
            return  # the transcript rules end a turn per VAD segment anyway
        if isinstance(frame, STTSegmentEmptyFrame):  # the segment held no words: nothing to wait for
            self._interim_pending = False
            if not self._speaking:
                self._segment_final = True
            self._reschedule()
            return
        if isinstance(frame, TranscriptionFrame):
            await self._on_transcript(frame)  # consumed: it reaches the LLM through the context
            return
        if isinstance(frame, InterimTranscriptionFrame):
            self._interim_pending = True
            self._in_turn = True
            self._reschedule()
            return
        if isinstance(frame, LLMRunFrame):
            await self.push_context_frame()
            return
        if await self._handle_context_edit(frame):
            return
        if isinstance(frame, StartFrame):
            self._allow_interruptions = frame.allow_interruptions
        elif isinstance(frame, UserStartedSpeakingFrame | UserStoppedSpeakingFrame):
            await self.push_frame(frame, direction)
            if self._follows_vad_frame(direction):
                await (self._user_started() if isinstance(frame, UserStartedSpeakingFrame) else self._user_stopped())
            return
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
            self._last_turn_text = None  # the reply is being heard: that turn is over for good
            self._shared.generating = False  # from now on the transport's barge-in covers it
            if self._idle is not None:
                self._idle.disarm()
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
            self._bot_turns += 1
            self._maybe_arm_idle()
        elif isinstance(frame, CancelFrame | EndFrame):
            await self._cancel_timer()
            await self._stop_tasks()
        await self.push_frame(frame, direction)

    def _follows_vad_frame(self, direction: FrameDirection) -> bool:
        if self._vad is None or direction is not DOWN:
            return direction is DOWN
        if not self._warned_double_vad:
            self._warned_double_vad = True
            logger.warning(
                "- %s: user speaking frames arrive from upstream and vad_analyzer runs here too;"
                " following its own VAD. Put vad_analyzer in one place (the transport params).",
                self.name,
            )
        return False

    async def cleanup(self) -> None:
        await self._cancel_timer()
        await self._stop_tasks()
        await super().cleanup()

    # --- the turn ----------------------------------------------------------------------

    async def _user_started(self) -> None:
        if self._idle is not None:
            self._idle.disarm()
        self._speaking = True
        self._stopped_at = None
        self._segment_text = self._segment_final = False
        if not self._in_turn:
            self._in_turn = True
            self._call_event_handler("on_user_turn_started")
        self._reschedule()  # no deadline while the caller speaks
        p = self._params
        if self._allow_interruptions and p.interrupt_while_generating and self._shared.generating:
            if not self._bot_speaking:
                logger.debug("= %s: caller spoke while the reply was generated: interrupting", self.name)
                self._shared.generating = False
                await self.push_frame(InterruptionTaskFrame(), UP)

    async def _user_stopped(self) -> None:
        self._speaking = False
        self._stopped_at = time.monotonic()
        self._in_turn = True
        self._reschedule()

    async def _on_transcript(self, frame: TranscriptionFrame) -> None:
        text = frame.text.strip()
        self._interim_pending = False
        if text:
            self._text.add(text)
            self._segment_text = True
            self._last_text_at = time.monotonic()
            if not self._in_turn:
                self._in_turn = True
                self._call_event_handler("on_user_turn_started")
        if frame.finalized and not self._speaking:
            self._segment_final = True
        self._reschedule()

    def _deadline(self) -> float | None:
        """When the current turn should end (``-inf``: now), or None while it must go on."""
        if self._turns is not None:
            return self._turns.deadline(self._text.words(), time.monotonic())
        p = self._params
        if self._speaking or not self._in_turn:
            return None
        if self._stopped_at is None:  # no VAD frames: transcripts alone
            if self._interim_pending or not self._text:
                return self._last_text_at + p.transcript_timeout_secs
            return float("-inf") if self._segment_final else self._last_text_at + p.aggregation_timeout
        limit = self._stopped_at + p.transcript_timeout_secs
        if self._segment_final and not self._interim_pending:
            return float("-inf")  # the segment's transcript is in (words, or an empty result)
        if self._segment_text and not self._interim_pending:
            if self._segment_final:
                return float("-inf")
            return min(limit, max(self._stopped_at, self._last_text_at) + p.aggregation_timeout)
        return limit

    def _reschedule(self) -> None:
        """Point the one owned timer task at the current deadline (starting it if needed)."""
        self._due = self._deadline()
        if self._due is None:
            self._wake.set()
            return
        if self._timer is None or self._timer.done():
            self._timer = asyncio.get_running_loop().create_task(self._timer_loop(), name=f"{self.name}:turn-timer")
        else:
            self._wake.set()

    async def _timer_loop(self) -> None:
        """Sleeps until the deadline, re-reading it whenever a frame moves it; ends the turn.
        Never cancelled mid-run by the turn logic (only on cancel, end, cleanup), so a run it
        is pushing cannot be lost."""
        while True:
            self._wake.clear()
            due = self._due
            if due is None:
                return
            remaining = due - time.monotonic()
            if remaining > 0:
                try:
                    async with asyncio.timeout(remaining):
                        await self._wake.wait()
                    continue
                except TimeoutError:
                    pass
            if self._due is None or self._due > time.monotonic():
                continue
            self._due = self._deadline()  # asked again: the text may have become ready since
            if self._due is None or self._due > time.monotonic():
                continue
            self._due = None
            await (self._end_strategy_turn() if self._turns is not None else self._end_turn())

    async def _cancel_timer(self) -> None:
        self._due = None
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
            await asyncio.gather(timer, return_exceptions=True)

    async def _end_turn(self) -> None:
        text = self._text.words()
        waited = None if self._stopped_at is None else time.monotonic() - self._stopped_at
        self._text.clear()
        self._in_turn = self._segment_text = self._segment_final = self._interim_pending = False
        self._stopped_at = None
        if not text:
            logger.debug("= %s: a turn without words (noise?) after %.2fs: nothing runs", self.name, waited or 0.0)
            return
        self._context.add_message({"role": "user", "content": text})
        logger.debug("= %s: user turn ended: %d chars", self.name, len(text))
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        self._call_event_handler("on_user_turn_stopped", UserTurnStoppedMessage(content=text, timestamp=stamp))
        await self.push_frame(LatencyStageFrame(stage="turn_end", at=time.monotonic(), processor=self.name))
        await self.push_context_frame()

    # --- VAD in the aggregator (Pipecat 1.x's placement) -------------------------------

    async def _analyze(self, frame: InputAudioRawFrame) -> None:
        vad = self._vad
        pcm = pcm_of(frame)
        if self._vad_converter is not None:
            pcm = self._vad_converter.convert(pcm, frame.sample_rate)
        elif vad.sample_rate != frame.sample_rate:
            try:
                vad.set_sample_rate(frame.sample_rate)
            except ValueError:  # e.g. Silero at 24 kHz: feed it 16 kHz
                from phonewire.audio.resample import RateConverter

                vad.set_sample_rate(_VAD_RATE)
                self._vad_converter = RateConverter(_VAD_RATE)
                pcm = self._vad_converter.convert(pcm, frame.sample_rate)
        for transition in vad.analyze(pcm):
            state = transition.state.name
            if state == "STOPPING":  # the early stop report: a speculative verdict (the STT is upstream)
                if self._turns is not None:
                    self._speech_stopping(vad.params.early_stop_secs)
                continue
            if self._turns is not None:
                await self._vad_event(started=state == "SPEAKING", user_frames=False)
                await (self._speech_started() if state == "SPEAKING" else self._speech_stopped(vad.params.stop_secs))
                continue
            if state == "SPEAKING":
                await self._vad_event(started=True)
                was_bot = self._bot_speaking
                await self._user_started()
                if was_bot and self._allow_interruptions:
                    await self.push_frame(InterruptionTaskFrame(), UP)
            elif state == "QUIET":
                await self._vad_event(started=False)
                await self._user_stopped()

    async def _vad_event(self, started: bool, *, user_frames: bool = True) -> None:
        params = self._vad.params
        for direction in (DOWN, UP):
            vad_frame: Frame
            if started:
                vad_frame = VADUserStartedSpeakingFrame(start_secs=params.start_secs, timestamp=time.time())
            else:
                vad_frame = VADUserStoppedSpeakingFrame(stop_secs=params.stop_secs, timestamp=time.time())
            await self.push_frame(vad_frame, direction)
            if user_frames:
                await self.push_frame(UserStartedSpeakingFrame() if started else UserStoppedSpeakingFrame(), direction)
