"""Turn and barge-in measurement, and the report's JSON, text and progress renderings."""

from __future__ import annotations

import json
import math

import pytest

from phonewire.testing.report import (
    CallReport,
    ProgressSnapshot,
    Turn,
    Violation,
    measure_barge_ins,
    measure_turns,
    render_progress,
)
from phonewire.testing.script import CallerUtterance


def utterance(start: float, end: float, *, barge_in: bool = False) -> CallerUtterance:
    return CallerUtterance(start, end, start, end, barge_in)


def test_a_turns_latency_runs_from_the_end_of_speech_to_the_next_bot_audio() -> None:
    turns = measure_turns([utterance(1.0, 2.0), utterance(5.0, 6.0)], [(0.2, 0.8), (2.45, 4.0), (6.3, 7.0)])
    assert turns == [Turn(2.0, 2.45, pytest.approx(450.0)), Turn(6.0, 6.3, pytest.approx(300.0))]


def test_a_turn_the_bot_never_answered_has_no_latency() -> None:
    turns = measure_turns([utterance(1.0, 2.0), utterance(3.0, 4.0)], [(3.5, 5.0)])
    assert turns[0] == Turn(2.0, None, None)  # bot audio at 3.5 answers the second utterance
    assert turns[1].first_bot_audio_s is None  # it began before the second one ended


def test_a_silent_utterance_is_not_a_turn() -> None:
    assert measure_turns([CallerUtterance(1.0, 2.0, 1.0, 1.0)], [(2.5, 3.0)]) == []


def test_barge_in_latency_runs_to_the_clear_that_cut_the_bot_off() -> None:
    [result] = measure_barge_ins([utterance(3.0, 4.0, barge_in=True)], [(2.0, 3.2)], [3.2], call_end_s=10.0)
    assert (result.speech_start_s, result.bot_silent_s) == (3.0, 3.2)
    assert result.latency_ms == pytest.approx(200.0)


def test_barge_in_latency_uses_the_clear_even_when_new_audio_follows_at_once() -> None:
    [result] = measure_barge_ins([utterance(3.0, 4.0, barge_in=True)], [(2.0, 5.0)], [3.25], call_end_s=10.0)
    assert result.bot_silent_s == 3.25


def test_a_bot_that_talks_over_the_caller_to_the_end_has_no_barge_in_latency() -> None:
    [result] = measure_barge_ins([utterance(3.0, 4.0, barge_in=True)], [(2.0, 10.0)], [], call_end_s=10.0)
    assert result.bot_silent_s is None and result.latency_ms is None


def test_only_barge_in_utterances_are_measured_as_barge_ins() -> None:
    assert measure_barge_ins([utterance(3.0, 4.0)], [(2.0, 5.0)], [], call_end_s=10.0) == []


def sample_report() -> CallReport:
    report = CallReport("twilio", "ws://x/media", completed=True, end_reason="the bot closed", hangup="socket_closed")
    report.turns = [Turn(1.23456, 1.7, 465.44)]
    report.protocol_violations = [Violation(0.5, 31924, "unknown event 'dance'")]
    report.underrun_gap_ms = math.inf  # not JSON: must not break the output
    return report


def test_the_json_report_holds_every_field_with_rounded_numbers() -> None:
    data = json.loads(sample_report().to_json())
    assert data["completed"] is True and data["hangup"] == "socket_closed"
    assert data["turns"] == [{"caller_speech_end_s": 1.235, "first_bot_audio_s": 1.7, "response_latency_ms": 465.44}]
    assert data["protocol_violations"] == [{"t_s": 0.5, "code": 31924, "reason": "unknown event 'dance'"}]
    assert data["underrun_gap_ms"] is None
    for name in ("duration_s", "barge_ins", "underruns", "audio_sent_s", "audio_received_s", "marks_sent_by_server",
                 "marks_echoed", "clears_received", "dtmf_sent", "close_code", "errors"):  # fmt: skip
        assert name in data


def test_the_text_report_is_a_compact_table() -> None:
    text = sample_report().render_text()
    assert "completed: the bot closed" in text
    assert "465 ms" in text and "1.23 s" in text
    assert "31924 unknown event 'dance'" in text
    assert "barge-ins   none" in text


def test_the_progress_line_overwrites_itself() -> None:
    line = render_progress(ProgressSnapshot(3.25, 3.2, 1.5, True, "listening"), width=70)
    assert line.startswith("\r") and len(line) == 71
    assert "3.2 s" in line and "bot speaking" in line and "listening" in line
