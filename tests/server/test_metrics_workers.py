"""/metrics under ``phonewire serve --workers 2``: one scrape shows both workers' calls."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from serve_subprocess import poll_metrics, samples, serving

from phonewire.testing import HangUp, Silence, simulate_call

MAX_CALLS_TRIED = 16


def _per_worker(text: str) -> dict[str, float]:
    return {labels["pid"]: value for labels, value in samples(text, "phonewire_worker_active_calls")}


def _total(text: str, name: str) -> float:
    return sum(value for _, value in samples(text, name))


def test_two_workers_calls_on_both_one_scrape_sums_them(tmp_path: Path) -> None:
    async def main() -> tuple[str, str, int]:
        async with serving(tmp_path, workers=2) as (base, _):
            ws = base.replace("http", "ws") + "/ws"
            calls: list[asyncio.Task[object]] = []
            try:
                # The kernel hands each connection to one worker; open calls one by one until
                # both workers' pids report some (each new call waits for its own gauge).
                while len(calls) < MAX_CALLS_TRIED:
                    script = [Silence(30), HangUp()]
                    calls.append(asyncio.create_task(simulate_call(ws, script=script, max_duration_s=40)))
                    n = len(calls)
                    text = await poll_metrics(base, lambda t, n=n: sum(_per_worker(t).values()) == n)
                    if sum(1 for v in _per_worker(text).values() if v > 0) == 2:
                        break
                during = text
            finally:
                for task in calls:
                    task.cancel()
                for task in calls:
                    with contextlib.suppress(BaseException):
                        await task
            n = len(calls)
            after = await poll_metrics(
                base, lambda t: _total(t, "phonewire_active_calls") == 0 and _total(t, "phonewire_calls_total") == n
            )
            return during, after, n

    during, after, n = asyncio.run(main())
    workers = _per_worker(during)
    assert len(workers) == 2 and all(v > 0 for v in workers.values()), during
    assert _total(during, "phonewire_active_calls") == n == sum(workers.values())
    assert _total(during, "phonewire_calls_started_total") == n
    assert _total(after, "phonewire_calls_total") == n  # both workers' ended calls, in one scrape
    assert _total(after, "phonewire_audio_in_seconds_total") > 0
