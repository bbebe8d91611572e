"""Stop strategies and the controller, with plain numbers (sans-I/O)."""

from __future__ import annotations

import math

import pytest

from phonewire.audio.turn import EndOfTurnState, TurnVerdict
from phonewire.exceptions import ConfigurationError
from phonewire.turns import (
    SpeechTimeoutUserTurnStopStrategy,
    TurnAnalyzerUserTurnStopStrategy,
    TurnView,
    UserTurnStrategies,
)
from phonewire.turns.controller import UserTurnController

NOW = -math.inf


class StubAnalyzer:
    sample_rate = 8000

    def __init__(self) -> None:
        self.cleared = 0
        self.started = 0

    def speech_started(self) -> None:
        self.started += 1

    def clear(self) -> None:
        self.cleared += 1


def verdict(p: float) -> TurnVerdict:
    return TurnVerdict(EndOfTurnState.COMPLETE if p > 0.5 else EndOfTurnState.INCOMPLETE, p)


def strategy(**kw: object) -> TurnAnalyzerUserTurnStopStrategy:
    return TurnAnalyzerUserTurnStopStrategy(turn_analyzer=StubAnalyzer(), **kw)  # type: ignore[arg-type]


def view(text: str, p: float | None, *, pending: bool = False) -> TurnView:
    return TurnView(10.0, text, True, None if p is None else verdict(p), pending)


@pytest.mark.parametrize(
    ("text", "p", "expected"),
    [
        ("My appointment is on the", 0.98, 11.5),  # unfinished clause beats a confident model
        ("I need milk,", 0.87, 11.5),
        ("What time do you close?", 0.95, NOW),
        ("What time do you close?", 0.5, NOW),  # unsure: the stop decides
        ("No thanks, that's all.", 0.02, 10.6),  # model sure it is not over: a short wait
        ("yes please", 0.9, NOW),
        ("yes please", 0.5, 10.6),
        ("yes please", 0.1, 11.5),
        ("yes please", None, 10.6),  # no verdict (model busy): like unsure
    ],
)
def test_phonewire_default_table(text: str, p: float | None, expected: float) -> None:
    assert strategy().deadline(view(text, p)) == pytest.approx(expected)


def test_pending_verdict_waits_at_most_the_bound() -> None:
    assert strategy().deadline(view("Hi.", None, pending=True)) == pytest.approx(11.5)


def test_smart_turn_only_follows_the_model() -> None:
    s = strategy(use_transcript=False, max_silence_secs=3.0)
    assert s.deadline(view("I need milk,", 0.87)) == NOW
    assert s.deadline(view("That's all.", 0.02)) == pytest.approx(13.0)


def test_speech_timeout_counts_silence() -> None:
    assert SpeechTimeoutUserTurnStopStrategy(timeout=0.6).deadline(view("x", None)) == pytest.approx(10.6)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        strategy(max_silence_secs=-1)
    with pytest.raises(ConfigurationError):
        strategy(incomplete_below=0.9, complete_above=0.1)
    with pytest.raises(ValueError):
        UserTurnStrategies(stop=[])


def test_controller_waits_for_the_text_then_asks_the_strategy_and_drops_stale_verdicts() -> None:
    analyzer = StubAnalyzer()
    s = TurnAnalyzerUserTurnStopStrategy(turn_analyzer=analyzer)  # type: ignore[arg-type]
    c = UserTurnController(UserTurnStrategies(stop=[s]), aggregation_timeout=0.15, transcript_timeout=1.5)
    assert c.speech_started(bot_speaking=False) is True
    assert c.speech_started(bot_speaking=False) is False  # the same turn
    assert c.speech_stopped(now=10.2, stop_secs=0.2) is True  # run the analyzer
    seq = c.seq
    assert c.deadline("", now=10.25) == pytest.approx(11.5)  # no text yet: its bound
    c.transcript("What time do you close?", True, 10.3, False)
    assert c.deadline("What time do you close?", now=10.3) == pytest.approx(11.5)  # verdict pending
    assert c.verdict_arrived(seq, verdict(0.9))
    assert c.deadline("What time do you close?", now=10.3) == NOW
    c.speech_started(bot_speaking=False)  # the caller goes on: the verdict is stale
    assert not c.verdict_arrived(seq, verdict(0.9))
    assert c.deadline("What time do you close?", now=10.5) is None  # speaking
    c.turn_ended()
    assert analyzer.cleared == 1 and not c.in_turn


def _speculating() -> tuple[UserTurnController, int]:
    s = TurnAnalyzerUserTurnStopStrategy(turn_analyzer=StubAnalyzer())  # type: ignore[arg-type]
    c = UserTurnController(UserTurnStrategies(stop=[s]), aggregation_timeout=0.15, transcript_timeout=1.5)
    c.speech_started(bot_speaking=False)
    assert c.speech_stopping() is True  # the early stop report: analyse now
    return c, c.seq


def test_a_verdict_in_before_the_stop_is_confirmed_is_adopted_at_the_stop() -> None:
    c, seq = _speculating()
    assert c.verdict_arrived(seq, verdict(0.9)) is False  # kept: the pause is not confirmed yet
    assert c.verdict is None and c.speaking
    assert c.speech_stopped(now=10.2, stop_secs=0.2) is False  # no second analysis
    assert c.verdict is not None and c.verdict.probability == 0.9 and not c.verdict_pending
    c.transcript("What time do you close?", True, 10.25, False)
    assert c.deadline("What time do you close?", now=10.25) == NOW


def test_a_verdict_still_running_at_the_stop_is_awaited_not_started_again() -> None:
    c, seq = _speculating()
    assert c.speech_stopped(now=10.2, stop_secs=0.2) is False
    assert c.verdict_pending and c.seq == seq
    c.transcript("What time do you close?", True, 10.25, False)
    assert c.deadline("What time do you close?", now=10.25) == pytest.approx(10.0 + 1.5)  # waits for it
    assert c.verdict_arrived(seq, verdict(0.9)) is True
    assert c.deadline("What time do you close?", now=10.3) == NOW


def test_a_speculative_verdict_is_dropped_when_the_caller_goes_on() -> None:
    c, seq = _speculating()
    c.speech_started(bot_speaking=False)  # more speech before the stop was confirmed
    assert c.verdict_arrived(seq, verdict(0.9)) is False
    assert c.speech_stopped(now=11.2, stop_secs=0.2) is True  # this pause gets its own analysis
    assert c.seq != seq and c.verdict is None and c.verdict_pending


def test_no_speculation_without_an_analyzer_or_while_quiet() -> None:
    c = UserTurnController(
        UserTurnStrategies(stop=[SpeechTimeoutUserTurnStopStrategy()]), aggregation_timeout=0.15, transcript_timeout=1.5
    )
    c.speech_started(bot_speaking=False)
    assert c.speech_stopping() is False
    c2, _ = _speculating()
    c2.speech_stopped(now=10.2, stop_secs=0.2)
    assert c2.speech_stopping() is False  # not speaking: nothing to speculate on
