"""The watchdog on an injected clock: a send stuck past send_timeout and a receive silent past
quiet_timeout are cancelled, and only those cancels are claimed as its own."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from phonewire.transports.watchdog import Watchdog


class FakeClock:
    """Time moves only when a sleeper asks (a sleep advances the clock and returns)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def _forever() -> None:
    await asyncio.Event().wait()


def test_period_is_half_the_shorter_limit() -> None:
    clock = FakeClock()
    assert Watchdog(clock, clock.sleep, send_timeout=2.0, quiet_timeout=30.0).period == 1.0
    assert Watchdog(clock, clock.sleep, send_timeout=2.0, quiet_timeout=0.4).period == 0.2
    assert Watchdog(clock, clock.sleep, send_timeout=2.0, quiet_timeout=None).period == 1.0


def test_a_send_is_cancelled_only_once_it_is_overdue() -> None:
    async def main() -> tuple[bool, bool, bool]:
        clock = FakeClock()
        dog = Watchdog(clock, clock.sleep, send_timeout=2.0)
        sender = asyncio.create_task(_forever())
        await asyncio.sleep(0)
        dog.begin_send(sender)
        dog.check(clock.now + 2.0)  # exactly at the limit: not yet
        early = sender.cancelling()
        dog.check(clock.now + 2.01)
        late = sender.cancelling()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        return bool(early), bool(late), dog.send_expired

    assert asyncio.run(main()) == (False, True, True)


def test_no_send_in_flight_means_nothing_to_cancel() -> None:
    async def main() -> int:
        clock = FakeClock()
        dog = Watchdog(clock, clock.sleep, send_timeout=2.0)
        sender = asyncio.create_task(_forever())
        await asyncio.sleep(0)
        dog.begin_send(sender)
        dog.send_started = None  # the send completed (the send path's finally)
        dog.check(clock.now + 60)
        sender.cancel()
        return int(dog.send_expired)

    assert asyncio.run(main()) == 0


def test_the_send_timeout_is_claimed_and_consumed_an_ordinary_cancel_is_not() -> None:
    async def main() -> list[Any]:
        clock = FakeClock()
        dog = Watchdog(clock, clock.sleep, send_timeout=1.0)
        seen: list[Any] = []

        async def send() -> None:
            dog.begin_send(asyncio.current_task())
            try:
                await _forever()
            except asyncio.CancelledError:
                seen.append(dog.claim_send_timeout(asyncio.current_task()))
                if not seen[-1]:
                    raise

        task = asyncio.create_task(send())
        await asyncio.sleep(0)
        dog.check(clock.now + 5)
        await task  # the watchdog's cancel was claimed: the task finishes normally
        other = asyncio.create_task(send())
        await asyncio.sleep(0)
        other.cancel()  # somebody else's cancel
        await asyncio.gather(other, return_exceptions=True)
        seen.append(other.cancelled())
        return seen

    assert asyncio.run(main()) == [True, False, True]


def test_a_silent_receive_is_cancelled_after_the_quiet_timeout() -> None:
    async def main() -> tuple[bool, bool]:
        clock = FakeClock()
        dog = Watchdog(clock, clock.sleep, send_timeout=2.0, quiet_timeout=30.0)
        receiver = asyncio.create_task(_forever())
        await asyncio.sleep(0)
        dog.watch_receive(receiver)
        dog.last_receive = clock.now
        dog.check(clock.now + 29.9)
        quiet_enough = not receiver.cancelling()
        dog.last_receive = clock.now + 29.9  # a message arrived: the silence starts again
        dog.check(clock.now + 59.0)
        still = not receiver.cancelling()
        dog.check(clock.now + 60.0)
        await asyncio.gather(receiver, return_exceptions=True)
        return quiet_enough and still, receiver.cancelled() and dog.receive_expired

    assert asyncio.run(main()) == (True, True)


def test_run_wakes_every_period_until_not_alive_and_reports_each_tick() -> None:
    async def main() -> tuple[list[float], list[float], bool]:
        clock = FakeClock()
        dog = Watchdog(clock, clock.sleep, send_timeout=2.0, quiet_timeout=0.5)
        receiver = asyncio.create_task(_forever())
        await asyncio.sleep(0)
        dog.watch_receive(receiver)
        dog.last_receive = clock.now
        ticks: list[float] = []
        await dog.run(lambda: not receiver.done() and len(ticks) < 10, ticks.append)
        await asyncio.gather(receiver, return_exceptions=True)
        return clock.sleeps, [round(t - 100.0, 3) for t in ticks], receiver.cancelled()

    sleeps, ticks, cancelled = asyncio.run(main())
    # Silent past 0.5 s at the third tick (0.75 s): cancelled; the loop sees it at the next wake.
    assert sleeps == [0.25] * 4 and ticks == [0.25, 0.5, 0.75, 1.0] and cancelled


def test_reset_forgets_the_old_sockets_verdicts() -> None:
    clock = FakeClock()
    dog = Watchdog(clock, clock.sleep)
    dog.send_expired = dog.receive_expired = True
    dog.reset()
    assert not dog.send_expired and not dog.receive_expired
