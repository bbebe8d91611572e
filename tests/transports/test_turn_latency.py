"""TurnLatencyTracker: a caller turn's latency as stages from the moment the caller stopped."""

from __future__ import annotations

import pytest

from phonewire.transports.playback import PlaybackTracker
from phonewire.transports.turn_latency import MAX_TURNS_KEPT, TurnLatencyTracker


def test_stages_are_seconds_from_the_caller_stopping_not_from_the_vad_stop() -> None:
    t = TurnLatencyTracker()
    t.caller_stopped(now=10.8, stop_secs=0.8)  # the caller went quiet at 10.0
    t.stage("transcript", 10.9)
    t.stage("turn_end", 10.95)
    t.stage("llm_first_token", 11.2)
    t.stage("llm_first_token", 11.9)  # only the first occurrence counts
    t.stage("tts_first_byte", 11.4)
    assert t.waiting_for_audio()
    t.stage("first_audio_sent", 11.45)
    assert t.waiting_for_heard()
    done = t.heard(11.5, "provider_ack")
    assert done is not None and t.current is None
    assert done.stages == pytest.approx(
        {
            "vad_stop": 0.8,
            "transcript": 0.9,
            "turn_end": 0.95,
            "llm_first_token": 1.2,
            "tts_first_byte": 1.4,
            "first_audio_sent": 1.45,
            "first_audio_heard": 1.5,
        }
    )
    assert done.response_secs == pytest.approx(1.5)
    assert "llm_first_token 1200" in done.describe()


def test_heard_never_precedes_sent_and_needs_a_send_first() -> None:
    t = TurnLatencyTracker()
    t.caller_stopped(now=1.0, stop_secs=0.2)
    assert t.heard(2.0, "provider_ack") is None  # nothing sent yet
    t.stage("first_audio_sent", 1.5)
    done = t.heard(1.2, "provider_ack")  # an ack computed to before the send: clamp
    assert done is not None and done.stages["first_audio_heard"] == pytest.approx(done.stages["first_audio_sent"])


def test_a_new_turn_closes_an_unanswered_one_and_history_is_bounded() -> None:
    t = TurnLatencyTracker()
    first = t.caller_stopped(now=1.0, stop_secs=0.2)
    assert first is None
    unanswered = t.caller_stopped(now=3.0, stop_secs=0.2)
    assert unanswered is not None and unanswered.index == 1 and "first_audio_heard" not in unanswered.stages
    for i in range(MAX_TURNS_KEPT + 5):
        t.caller_stopped(now=4.0 + i, stop_secs=0.2)
    assert len(t.turns) == MAX_TURNS_KEPT


def test_text_placed_by_tts_timing_is_heard_to_the_word() -> None:
    tracker = PlaybackTracker(acks=True)
    for pts, word in [(0, "One "), (300, "two "), (600, "three "), (900, "four.")]:
        tracker.add_text_at(pts, word)
    utt = tracker.current
    assert utt is not None
    assert utt.heard_text(650) == "One two three "
    assert utt.heard_text(0) == ""
    # late-arriving words are still ordered by where their audio is
    tracker.add_text_at(150, "and-a-half ")
    assert utt.heard_text(320) == "One and-a-half two "


def test_tts_sentences_heard_across_a_boundary_keep_their_space() -> None:
    import asyncio

    from phonewire.frames import TTSTextFrame
    from phonewire.transports.output import FastAPIWebsocketOutputTransport

    class _Stub:
        tracker = PlaybackTracker(acks=True)
        _queued_samples = 0
        rate = 8000
        _reply_base_ms = 0.0

    stub = _Stub()
    for pts, sentence in [(0, "Your order shipped today."), (900, "It will arrive tomorrow.")]:
        FastAPIWebsocketOutputTransport._on_text(stub, TTSTextFrame(text=sentence, pts_ms=pts))  # type: ignore[arg-type]
    utt = stub.tracker.current
    assert utt is not None and utt.heard_text(1000) == "Your order shipped today. It will arrive tomorrow. "
    assert asyncio.iscoroutinefunction(FastAPIWebsocketOutputTransport._turn_heard)
