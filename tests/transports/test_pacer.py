"""Pacer: deadlines by media time from an anchor, lead, catch-up after a stall, re-anchoring."""

from __future__ import annotations

import pytest

from phonewire.transports.pacer import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def send_burst(pacer: Pacer, clock: FakeClock, packets: int, samples: int = 160) -> list[float]:
    """Send ``packets`` as fast as the pacer allows; returns each send time."""
    times = []
    for _ in range(packets):
        clock.now += pacer.delay_before_send()
        times.append(clock.now)
        pacer.on_sent(samples)
    return times


def test_a_burst_goes_out_at_media_time_minus_the_lead() -> None:
    clock = FakeClock()
    pacer = Pacer(8000, 0.06, clock=clock)
    times = send_burst(pacer, clock, 10)
    offsets = [round(t - times[0], 6) for t in times]
    # the first 4 packets (0, 20, 40, 60 ms of audio) may leave at once: that is the 60 ms lead
    assert offsets == pytest.approx([0, 0, 0, 0, 0.02, 0.04, 0.06, 0.08, 0.10, 0.12])


def test_deadlines_are_anchored_so_packet_sizes_do_not_accumulate_error() -> None:
    clock = FakeClock()
    pacer = Pacer(8000, 0.0, clock=clock)
    times = send_burst(pacer, clock, 100, samples=123)
    assert times[-1] - times[0] == pytest.approx(99 * 123 / 8000)


def test_a_late_sender_catches_up_to_its_lead_instead_of_carrying_the_delay() -> None:
    clock = FakeClock()
    pacer = Pacer(8000, 0.06, clock=clock)
    send_burst(pacer, clock, 10)
    clock.now += 0.05  # an event-loop stall shorter than the buffered audio
    assert pacer.delay_before_send() == 0.0  # sends at once ...
    assert pacer.buffered_secs() > 0  # ... without having lost the schedule
    assert pacer.underruns == 0


def test_running_dry_mid_utterance_counts_an_underrun_and_re_anchors() -> None:
    clock = FakeClock()
    pacer = Pacer(8000, 0.06, clock=clock)
    send_burst(pacer, clock, 5)
    clock.now += 1.0
    assert pacer.delay_before_send() == 0.0
    assert pacer.underruns == 1
    assert pacer.buffered_secs() == 0.0


def test_a_pause_between_utterances_is_not_an_underrun() -> None:
    clock = FakeClock()
    pacer = Pacer(8000, 0.06, clock=clock)
    send_burst(pacer, clock, 5)
    pacer.end_of_utterance()
    clock.now += 1.0
    pacer.delay_before_send()
    assert pacer.underruns == 0


def test_reset_forgets_the_schedule() -> None:
    clock = FakeClock()
    pacer = Pacer(8000, 0.0, clock=clock)
    send_burst(pacer, clock, 50)
    pacer.reset()
    assert pacer.playout_end() is None and pacer.delay_before_send() == 0.0
