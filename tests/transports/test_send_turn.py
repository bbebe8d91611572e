"""SendTurn on its own: FIFO hand-over, and a cancelled waiter never blocks the ones behind it."""

from __future__ import annotations

import asyncio

from phonewire.transports.send_turn import SendTurn


async def _hold(turn: SendTurn, name: str, log: list[str], gate: asyncio.Event) -> None:
    """A sender as the transport's send path runs one."""
    if turn.busy or turn.waiters:
        await turn.wait()
    turn.busy = True
    try:
        log.append(name)
        await gate.wait()
    finally:
        turn.busy = False
        if turn.waiters:
            turn.wake_next()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_senders_take_the_turn_in_arrival_order() -> None:
    async def main() -> list[str]:
        turn, log, gate = SendTurn(), [], asyncio.Event()
        tasks = [asyncio.create_task(_hold(turn, str(i), log, gate)) for i in range(5)]
        await _settle()
        assert log == ["0"] and len(turn.waiters) == 4  # one holds the turn, four queue
        gate.set()
        await asyncio.gather(*tasks)
        assert not turn.busy and not turn.waiters
        return log

    assert asyncio.run(main()) == ["0", "1", "2", "3", "4"]


def test_a_cancelled_waiter_leaves_the_queue() -> None:
    async def main() -> list[str]:
        turn, log, gate = SendTurn(), [], asyncio.Event()
        first = asyncio.create_task(_hold(turn, "1", log, gate))
        await _settle()
        doomed = asyncio.create_task(_hold(turn, "2", log, gate))
        last = asyncio.create_task(_hold(turn, "3", log, gate))
        await _settle()
        doomed.cancel()
        await _settle()
        assert len(turn.waiters) == 1
        gate.set()
        await asyncio.wait_for(asyncio.gather(first, last), 2)
        return log

    assert asyncio.run(main()) == ["1", "3"]


class _CancelOnWake(SendTurn):
    """Cancels the woken waiter's task right after handing it the turn, before it runs."""

    __slots__ = ("victim",)

    def wake_next(self, skip: asyncio.Future[None] | None = None) -> None:
        super().wake_next(skip)
        victim = getattr(self, "victim", None)
        if victim is not None and not victim.done():
            victim.cancel()
            self.victim = None


def test_a_waiter_cancelled_just_after_being_woken_passes_its_turn_on() -> None:
    async def main() -> tuple[list[str], bool]:
        turn, log, gate = _CancelOnWake(), [], asyncio.Event()
        first = asyncio.create_task(_hold(turn, "1", log, gate))
        await _settle()
        woken = asyncio.create_task(_hold(turn, "2", log, gate))
        last = asyncio.create_task(_hold(turn, "3", log, gate))
        await _settle()
        turn.victim = woken
        gate.set()
        await asyncio.wait_for(asyncio.gather(first, last), 2)
        return log, woken.cancelled()

    log, cancelled = asyncio.run(main())
    assert log == ["1", "3"] and cancelled


def test_a_sender_that_got_in_first_sends_the_woken_waiter_back_to_the_front() -> None:
    async def main() -> list[str]:
        turn, log = SendTurn(), []
        loop = asyncio.get_running_loop()
        turn.busy = True  # someone holds the turn
        waiter = asyncio.create_task(turn.wait())
        await _settle()
        turn.busy = False
        turn.wake_next()  # the waiter is woken ...
        turn.busy = True  # ... but another sender takes the turn before it runs
        await _settle()
        assert not waiter.done() and len(turn.waiters) == 1  # back in the queue, at the front
        behind: asyncio.Future[None] = loop.create_future()
        turn.waiters.append(behind)
        turn.busy = False
        turn.wake_next()
        await asyncio.wait_for(waiter, 2)
        log.append("woken first" if not behind.done() else "overtaken")
        return log

    assert asyncio.run(main()) == ["woken first"]
