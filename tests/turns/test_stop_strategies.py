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
