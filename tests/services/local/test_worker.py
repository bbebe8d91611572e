"""InferenceWorker: one thread, a bounded queue, slots released when a job really ends."""

from __future__ import annotations

import asyncio
import threading

import pytest

from phonewire.services.local import InferenceBusy, InferenceWorker


def test_a_full_queue_refuses_at_once_and_a_cancelled_job_holds_its_slot_until_it_returns() -> None:
    async def main() -> None:
        worker = InferenceWorker("test", max_pending=1)
        release = threading.Event()
        started = threading.Event()
        threads: list[str] = []

        def blocking() -> str:
            threads.append(threading.current_thread().name)
            started.set()
            release.wait(5)
            return "done"

        job = asyncio.get_running_loop().create_task(worker.run(blocking))
        await asyncio.to_thread(started.wait, 5)
        with pytest.raises(InferenceBusy):
            await worker.run(blocking)
        assert worker.refused == 1

        job.cancel()  # the awaiting coroutine goes; the job on the thread cannot be stopped
        with pytest.raises(asyncio.CancelledError):
            await job
        assert worker.pending == 1
        with pytest.raises(InferenceBusy):
            await worker.run(blocking)

        release.set()
        started.clear()
        # The thread is FIFO and runs a job's done callbacks before the next job: once this
        # no-op has run, the cancelled job has returned and released its slot.
        await asyncio.wait_for(asyncio.wrap_future(worker._executor.submit(lambda: None)), 5)
        assert worker.pending == 0
        assert await worker.run(lambda: threading.current_thread().name) == threads[0]
        assert threads[0].startswith("phonewire-test") and threads[0] != threading.current_thread().name
        worker.shutdown()

    asyncio.run(main())
