"""When does a caller's turn end? Pipecat's stop strategies, and phonewire's patient default.

A stop strategy is sans-I/O: given what is known about the turn (:class:`TurnView`: when the
caller went quiet, the text so far, the model's verdict if any), it returns the time at which
the turn should end - ``-inf`` for now, a monotonic time, or None while it cannot say. The user
aggregator owns the clock, the transcript bookkeeping and the inference task; it ends the turn
at the earliest deadline of its stop strategies, and never before the text of the last speech
segment is in (bounded by ``transcript_timeout_secs``).

"Caller went quiet" is the VAD's stop minus its ``stop_secs``: timeouts here count silence, so
they mean the same whatever the VAD's confirmation delay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from phonewire.audio.turn.base_turn_analyzer import BaseTurnAnalyzer, TurnVerdict
from phonewire.exceptions import ConfigurationError
from phonewire.turns.transcript_hints import ClauseHint, clause_hint

__all__ = [
    "BaseUserTurnStopStrategy",
    "SpeechTimeoutUserTurnStopStrategy",
    "TurnAnalyzerUserTurnStopStrategy",
    "TurnView",
]

NOW = -math.inf


@dataclass(frozen=True, slots=True)
class TurnView:
    silent_since: float  # monotonic time the caller went quiet
    text: str  # the turn's transcripts so far
    text_ready: bool  # the last segment's transcript is in (or will not come)
    verdict: TurnVerdict | None  # the analyzer's verdict on the turn so far
    verdict_pending: bool  # an analysis is running
    analysis_failed: bool = False  # the model could not run (busy, error): decide without it
    segmented: bool = False  # the newest text was transcribed per segment (Whisper-style)


class BaseUserTurnStopStrategy:
    #: The analyzer this strategy wants run at each pause (None: it needs no model).
    turn_analyzer: BaseTurnAnalyzer | None = None

    def deadline(self, view: TurnView) -> float | None:
        raise NotImplementedError


def _check_secs(owner: str, name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 30:
        raise ConfigurationError(f"{owner}({name}={value!r}): use seconds in [0, 30]")


class SpeechTimeoutUserTurnStopStrategy(BaseUserTurnStopStrategy):
    """The turn ends after ``timeout`` seconds of silence: the plain silence timer."""

    def __init__(self, *, timeout: float = 0.6) -> None:
        _check_secs("SpeechTimeoutUserTurnStopStrategy", "timeout", timeout)
        self.timeout = timeout

    def deadline(self, view: TurnView) -> float | None:
        return view.silent_since + self.timeout


class TurnAnalyzerUserTurnStopStrategy(BaseUserTurnStopStrategy):
    """An end-of-turn model decides at the pause; phonewire adds the transcript and a bound.

    With ``use_transcript=False`` it behaves like Pipecat's: COMPLETE ends the turn (once the
    text is in), INCOMPLETE waits for more speech or ``max_silence_secs`` (Pipecat's 3 s).

    With ``use_transcript=True`` (phonewire's default), the verdict and :func:`clause_hint` of
    the text decide together (``p`` = P(complete); "sure" = below ``incomplete_below`` or at or
    above ``complete_above``):

    ====================  ===============  ==================  ====================
    p \\ transcript        unfinished       ends . ? !          neutral
    ====================  ===============  ==================  ====================
    sure complete          wait (max)       end now             end now
    unsure / no verdict    wait (max)       end now             ``unsure_timeout``
    sure incomplete        wait (max)       ``unsure_timeout``  wait (max)
    ====================  ===============  ==================  ====================

    "wait (max)" ends the turn after ``max_silence_secs`` of silence unless the caller goes on.

    A full stop from a per-segment STT (``view.segmented``: Whisper transcribed the last pause's
    speech alone, and it ends every fragment it hears alone with ".") is weak evidence: it ends
    the turn at once only when the model is sure too, else after ``unsure_timeout``. "?" and "!"
    keep their weight (a recogniser does not invent a question).
    An unfinished clause outranks even a confident model: nobody ends a turn on "the" or a
    comma, and the model cannot see words. A full stop against a confident "incomplete" gets a
    short wait, not the long one, because Whisper-style recognisers add stops to fragments and
    the model is unreliable on narrowband audio (docs/turn-taking.md has the measurements).
    """

    def __init__(
        self,
        *,
        turn_analyzer: BaseTurnAnalyzer,
        use_transcript: bool = True,
        max_silence_secs: float = 1.5,
        unsure_timeout_secs: float = 0.6,
        complete_above: float = 0.8,
        incomplete_below: float = 0.2,
        weak_segment_stops: bool = False,
    ) -> None:
        name = "TurnAnalyzerUserTurnStopStrategy"
        _check_secs(name, "max_silence_secs", max_silence_secs)
        _check_secs(name, "unsure_timeout_secs", unsure_timeout_secs)
        if not 0 <= incomplete_below <= complete_above <= 1:
            raise ConfigurationError(f"{name}: need 0 <= incomplete_below <= complete_above <= 1")
        if unsure_timeout_secs > max_silence_secs:
            raise ConfigurationError(f"{name}: unsure_timeout_secs > max_silence_secs")
        self.turn_analyzer = turn_analyzer
        self.use_transcript = use_transcript
        self.max_silence_secs = max_silence_secs
        self.unsure_timeout_secs = unsure_timeout_secs
        self.complete_above = complete_above
        self.incomplete_below = incomplete_below
        self.weak_segment_stops = weak_segment_stops

    def deadline(self, view: TurnView) -> float | None:
        longest = view.silent_since + self.max_silence_secs
        if view.verdict_pending:
            return longest  # recomputed when the verdict arrives
        p = None if view.verdict is None else view.verdict.probability
        if not self.use_transcript:
            return NOW if view.verdict is not None and view.verdict.is_complete else longest
        if not view.text_ready:
            return longest  # recomputed when the text arrives (bounded by the aggregator)
        hint = clause_hint(view.text)
        if hint is ClauseHint.INCOMPLETE:
            return longest
        unsure = view.silent_since + self.unsure_timeout_secs
        sure_incomplete = p is not None and p < self.incomplete_below
        if hint is ClauseHint.COMPLETE:
            if self.weak_segment_stops and view.segmented and view.text.rstrip().endswith("."):
                return NOW if p is not None and p >= self.complete_above else unsure
            return unsure if sure_incomplete else NOW
        if p is not None and p >= self.complete_above:
            return NOW
        return longest if sure_incomplete else unsure
