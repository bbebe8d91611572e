"""Playout: the handset's real-time queue of bot audio and marks, driven by a fake clock."""

from __future__ import annotations

import math

import pytest

from phonewire.audio.analysis import rms_dbfs, silence, tone
from phonewire.testing.playout import Playout, audible_intervals

RATE = 8000


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0  # any origin: the playout measures from its start

    def __call__(self) -> float:
        return self.t

    def at(self, t_s: float) -> None:
        self.t = 100.0 + t_s


def make_playout(**kwargs: float) -> tuple[Playout, FakeClock]:
    clock = FakeClock()
    return Playout(RATE, clock=clock, **kwargs), clock


def audio(seconds: float) -> bytes:
    return tone(440, seconds, RATE)


def test_a_mark_is_echoed_only_once_the_audio_before_it_has_played() -> None:
    playout, clock = make_playout()
    playout.push_audio(audio(1.0))
    assert playout.push_mark("a") == []
    clock.at(0.999)
    assert playout.poll() == []
    clock.at(1.0)
    assert playout.poll() == ["a"]
    assert playout.poll() == []


def test_marks_between_audio_chunks_are_echoed_at_each_chunks_end() -> None:
    playout, clock = make_playout()
    playout.push_audio(audio(0.5))
    playout.push_mark("first")
    clock.at(0.2)
    playout.push_audio(audio(0.5))  # queued behind the first chunk: ends at 1.0
    playout.push_mark("second")
    clock.at(0.5)
    assert playout.poll() == ["first"]
    clock.at(0.99)
    assert playout.poll() == []
    clock.at(1.0)
    assert playout.poll() == ["second"]


def test_a_mark_with_nothing_queued_is_echoed_immediately() -> None:
    playout, clock = make_playout()
    assert playout.push_mark("empty") == ["empty"]
    playout.push_audio(audio(0.1))
    clock.at(0.3)  # that audio has finished
    assert playout.push_mark("after") == ["after"]


def test_clear_empties_the_queue_and_returns_every_pending_mark() -> None:
    playout, clock = make_playout()
    playout.push_audio(audio(1.0))
    playout.push_mark("a")
    playout.push_audio(audio(1.0))
    playout.push_mark("b")
    clock.at(0.25)
    assert playout.clear() == ["a", "b"]
    assert not playout.busy
    assert playout.queued_s == 0.0
    assert playout.spans[-1].end_s == 0.25 and playout.spans[-1].cleared
    clock.at(5.0)
    assert playout.poll() == []
    assert playout.played_s() == 0.25


def test_audio_after_a_clear_starts_at_once_and_is_not_an_underrun() -> None:
    playout, clock = make_playout()
    playout.push_audio(audio(1.0))
    clock.at(0.3)
    playout.clear()
    clock.at(0.4)
    playout.push_audio(audio(0.2))
    assert playout.spans[-1].start_s == pytest.approx(0.4)
    assert playout.underruns == 0


def test_audio_arriving_shortly_after_the_queue_ran_dry_counts_as_an_underrun() -> None:
    playout, clock = make_playout()
    playout.push_audio(audio(0.1))
    clock.at(0.15)  # 50 ms of nothing, then the utterance continues
    playout.push_audio(audio(0.1))
    clock.at(0.5)  # 250 ms gap
    playout.push_audio(audio(0.1))
    assert playout.underruns == 2
    assert math.isclose(playout.underrun_gap_ms, 300.0)


def test_a_long_pause_between_utterances_is_not_an_underrun() -> None:
    playout, clock = make_playout()
    playout.push_audio(audio(0.1))
    clock.at(1.2)
    playout.push_audio(audio(0.1))
    assert playout.underruns == 0
    assert len(playout.spans) == 2


def test_audio_pushed_while_busy_extends_the_same_span_without_a_gap() -> None:
    playout, clock = make_playout()
    playout.push_audio(audio(0.1))
    clock.at(0.05)
    playout.push_audio(audio(0.1))
    assert len(playout.spans) == 1
    assert math.isclose(playout.spans[0].end_s, 0.2)
    assert playout.underruns == 0


def test_heard_places_bot_audio_on_the_playout_timeline() -> None:
    playout, clock = make_playout()
    clock.at(1.0)
    playout.push_audio(audio(0.5))
    assert playout.level_dbfs(0.0, 1.0) == -math.inf
    assert playout.level_dbfs(1.0, 1.5) > -15
    window = playout.heard(0.9, 1.1)
    assert rms_dbfs(window[: len(window) // 2]) == -math.inf
    assert rms_dbfs(window[len(window) // 2 :]) > -15


def test_queued_audio_beyond_the_cap_is_dropped_and_counted() -> None:
    playout, _ = make_playout(max_queued_s=1.0)
    playout.push_audio(audio(0.8))
    playout.push_audio(audio(0.8))
    assert math.isclose(playout.queued_s, 1.0)
    assert math.isclose(playout.dropped_s, 0.6)
    assert math.isclose(playout.received_s, 1.0)


def test_audible_intervals_merge_word_gaps_and_stop_at_the_end_of_the_call() -> None:
    playout, clock = make_playout()
    playout.push_audio(audio(0.3) + silence(0.1, RATE) + audio(0.3) + silence(1.0, RATE) + audio(0.5))
    runs = audible_intervals(playout.spans, until_s=2.0)
    assert [(round(s, 2), round(e, 2)) for s, e in runs] == [(0.0, 0.7), (1.7, 2.0)]
