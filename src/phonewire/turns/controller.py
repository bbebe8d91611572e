"""UserTurnController: the state of one caller turn under turn strategies (sans-I/O).

The user aggregator feeds it what happened (VAD start/stop, transcripts, the analyzer's verdict)
with the time, and asks two things: did a turn just start, and when should it end
(:meth:`deadline`). It never sleeps or runs the model itself: the aggregator owns the timer and
the inference task, so everything here is testable with plain numbers.

Transcript readiness, the rule every stop strategy is held to: a turn ends only once the text of
its last speech segment is in - a ``finalized`` transcript, or text and then
``aggregation_timeout`` without more - or ``transcript_timeout`` after the caller went quiet.
With a segmented STT (it announces each segment it transcribes: :meth:`segment_submitted`) the
rule is exact: the text is in when the result of the *last* segment came (:meth:`segment_result`,
words or nothing), so a late transcript of an earlier pause is never taken for the last one,
and a noise segment that yields nothing does not make the turn wait. A turn without words when
it ends is noise: nothing runs. A transcript that starts a turn while the caller is quiet (it
came after the turn it belonged to had ended) starts the silence clock, so that turn ends too.

A speculative verdict: when the VAD reports that the caller *may* be stopping
(``VADParams.early_stop_secs``, :meth:`speech_stopping`), the analysis starts then, on the speech
so far; if the VAD confirms that same pause (:meth:`speech_stopped`, no speech in between), that
analysis *is* the pause's - its verdict, in or still running, is adopted instead of starting a
new one, so the model's ~100 ms runs during the rest of the VAD's stop wait instead of after
it. If the caller goes on, the verdict is stale and dropped like any other.
"""

from __future__ import annotations

import math

from phonewire.audio.turn.base_turn_analyzer import TurnVerdict
from phonewire.turns.user_start import UserTurnStartContext
from phonewire.turns.user_stop import TurnView
from phonewire.turns.user_turn_strategies import UserTurnStrategies

__all__ = ["UserTurnController"]


class UserTurnController:
    def __init__(
        self, strategies: UserTurnStrategies, *, aggregation_timeout: float, transcript_timeout: float
    ) -> None:
        self.strategies = strategies
        self.analyzer = strategies.turn_analyzer
        self.aggregation_timeout = aggregation_timeout
        self.transcript_timeout = transcript_timeout
        self.in_turn = False
        self.speaking = False
        self.silent_since: float | None = None
        self.words = 0
        self._segment_text = False
        self._segment_final = False
        self._interim = False
        self._last_text_at = 0.0
        self._awaiting_segment = 0  # the last segment of this turn the STT is transcribing
        self._received_segment = 0  # the newest segment whose result came
        self.segmented = False  # the turn's newest text came from a per-segment STT
        self.verdict: TurnVerdict | None = None
        self.verdict_pending = False
        self.analysis_failed = False
        self.seq = 0  # bumps whenever a pending verdict becomes stale
        self._spec_seq: int | None = None  # the analysis started at the VAD's early stop report
        self._spec_result: tuple[TurnVerdict | None] | None = None  # its outcome, once in

    # --- events: each returns True when the turn started with it ----------------------------

    def speech_started(self, bot_speaking: bool) -> bool:
        self.speaking = True
        self.silent_since = None
        self._segment_text = self._segment_final = False
        self._stale()
        if self.analyzer is not None:
            self.analyzer.speech_started()  # type: ignore[attr-defined]
        ctx = UserTurnStartContext(bot_speaking=bot_speaking, words=self.words)
        return self._maybe_start(any(s.on_speech_started(ctx) for s in self.strategies.start))

    def speech_stopping(self) -> bool:
        """The VAD reported that the caller may be stopping; True if the analyzer should run now
        (speculatively: :meth:`speech_stopped` adopts it if the pause is confirmed)."""
        if self.analyzer is None or not self.speaking or not (self.in_turn or self.words):
            return False
        self._stale()
        self._spec_seq = self.seq
        return True

    def speech_stopped(self, now: float, stop_secs: float) -> bool:
        """The VAD reported a pause; True if the analyzer should run now."""
        self.speaking = False
        self.silent_since = now - stop_secs
        if self._spec_seq is not None and self._spec_seq == self.seq:
            # The pause the speculative analysis was started at: it is this pause's analysis.
            result, self._spec_seq, self._spec_result = self._spec_result, None, None
            if result is None:
                self.verdict_pending = True
            else:
                self.verdict, self.verdict_pending = result[0], False
                self.analysis_failed = result[0] is None
            return False
        self._stale()
        if self.analyzer is None or not (self.in_turn or self.words):
            return False
        self.verdict_pending = True
        return True

    def transcript(self, text: str, finalized: bool, now: float, bot_speaking: bool) -> bool:
        """A transcript from an STT that does not number its segments (streaming, or a test)."""
        self._interim = False
        if text:
            self.words += len(text.split())
            self._segment_text = True
            self._last_text_at = now
            self.segmented = False
        if finalized and not self.speaking:
            self._segment_final = True
        return self._text_arrived(text, now, bot_speaking)

    def segment_submitted(self, segment: int) -> None:
        """A segmented STT is transcribing ``segment``: the speech up to the pause just reported."""
        self._awaiting_segment = max(self._awaiting_segment, segment)

    def segment_result(self, segment: int, text: str, now: float, bot_speaking: bool) -> bool:
        """Segment ``segment``'s transcript (``text``; "" when it held no words) came."""
        self._received_segment = max(self._received_segment, segment)
        if text:
            self.words += len(text.split())
            self._last_text_at = now
            self.segmented = True
        return self._text_arrived(text, now, bot_speaking)

    def reopen(self, words: int) -> None:
        """The turn that just ended is taken back (its reply was cancelled before the caller
        heard any of it): its ``words`` belong to the turn that is starting."""
        self.words += words

    def _text_arrived(self, text: str, now: float, bot_speaking: bool) -> bool:
        ctx = UserTurnStartContext(bot_speaking=bot_speaking, words=self.words)
        started = self._maybe_start(bool(text) and any(s.on_transcript(ctx) for s in self.strategies.start))
        if started and not self.speaking and self.silent_since is None:
            self.silent_since = now  # late words of a quiet caller: decide about them from now
        return started

    def interim(self, bot_speaking: bool) -> bool:
        self._interim = True
        ctx = UserTurnStartContext(bot_speaking=bot_speaking, words=max(self.words, 1))
        return self._maybe_start(any(s.on_transcript(ctx) for s in self.strategies.start))

    def verdict_arrived(self, seq: int, verdict: TurnVerdict | None) -> bool:
        """The analysis ``seq`` finished (None: it could not run). False if it is stale (or
        speculative and not yet confirmed: it is kept for :meth:`speech_stopped`)."""
        if seq == self._spec_seq == self.seq:
            self._spec_result = (verdict,)
            return False
        if seq != self.seq or not self.verdict_pending:
            return False
        self.verdict, self.verdict_pending = verdict, False
        self.analysis_failed = verdict is None
        return True

    def turn_ended(self) -> None:
        self.in_turn = False
        self.silent_since = None
        self.words = 0
        self._segment_text = self._segment_final = self._interim = False
        self._awaiting_segment = 0
        self.segmented = False
        self._stale()
        if self.analyzer is not None:
            self.analyzer.clear()  # type: ignore[attr-defined]

    # --- the decision -------------------------------------------------------------------------

    def deadline(self, text: str, now: float) -> float | None:
        """When the turn ends (``-inf``: now), or None while it must go on. A deadline that
        passes is asked again (the text may have become ready): the aggregator ends the turn
        only when the answer is still in the past."""
        since = self.silent_since
        if self.speaking or since is None or not (self.in_turn or text):
            return None
        ready_at = self._text_ready_at(since)
        if ready_at > now:
            return ready_at  # decide once the text is in (or will not come)
        view = TurnView(
            since, text, True, self.verdict, self.verdict_pending, self.analysis_failed, segmented=self.segmented
        )
        decided = [d for d in (s.deadline(view) for s in self.strategies.stop) if d is not None]
        return min(decided) if decided else None

    def _text_ready_at(self, since: float) -> float:
        limit = since + self.transcript_timeout
        if self._awaiting_segment:
            return -math.inf if self._received_segment >= self._awaiting_segment else limit
        if self._segment_text and not self._interim:
            if self._segment_final:
                return -math.inf
            return min(limit, max(since, self._last_text_at) + self.aggregation_timeout)
        return limit

    def _maybe_start(self, start: bool) -> bool:
        if start and not self.in_turn:
            self.in_turn = True
            return True
        return False

    def _stale(self) -> None:
        self.seq += 1
        self._spec_seq = self._spec_result = None
        self.verdict = None
        self.verdict_pending = False
        self.analysis_failed = False
