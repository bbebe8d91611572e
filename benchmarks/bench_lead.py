"""How much send-ahead lead does bot audio need? (the default of ``audio_out_lead_secs``)

A lead is audio the provider holds beyond what is playing, so a late packet does not become
an audible gap. Late packets come from event-loop stalls on a busy server and from network
jitter between us and the provider; a bigger lead costs nothing at barge-in (the provider's
buffer is cleared) but more audio sent and never heard when a call drops. This benchmark
plays 8 s of bot speech through a real server while

* a load task blocks the server's event loop for ``stall_ms`` every 100 ms (what hundreds
  of calls on one core look like), and
* the handset receives each packet after a random network delay of 0..``jitter_ms``
  (order kept, as TCP does),

and counts the gaps the handset hears for each lead. Ratios are against lead 0 measured in
the same run. Run: ``.venv/bin/python benchmarks/bench_lead.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from phonewire.audio.analysis import tone
from support.bots import KeypadBot
from support.echo_app import make_app
from support.server_harness import serve
from support.wire import WireClient

GAP_TOLERANCE_S = 0.002


async def stall_loop(stall_ms: float, stop: asyncio.Event) -> None:
    """Block the event loop like CPU-bound work of other calls does."""
    while not stop.is_set():
        await asyncio.sleep(0.1)
        end = time.perf_counter() + random.uniform(0, stall_ms) / 1000
        while time.perf_counter() < end:
            pass


async def one_run(lead: float, stall_ms: float, jitter_ms: float, seconds: float, seed: int) -> tuple[int, float]:
    random.seed(seed)
    app, _ = make_app(bot=lambda call: KeypadBot(tone(300, seconds, 24000)), params={"audio_out_lead_secs": lead})
    stop = asyncio.Event()
    async with serve(app) as hostport:
        client = await WireClient.connect(hostport, respond=False)
        await client.handshake()
        loader = asyncio.create_task(stall_loop(stall_ms, stop))
        await client.dtmf("1")
        arrivals: list[tuple[float, float]] = []  # (arrival after network delay, duration)
        last = 0.0
        try:
            while True:
                msg = await client.recv(timeout=1.0)
                if msg["event"] != "media":
                    continue
                arrival = max(last, time.monotonic() + random.uniform(0, jitter_ms) / 1000)
                last = arrival
                arrivals.append((arrival, len(base64.b64decode(msg["media"]["payload"])) / 8000))
        except TimeoutError:
            pass
        stop.set()
        await loader
        await client.close()
    return count_gaps(arrivals)


def count_gaps(arrivals: list[tuple[float, float]]) -> tuple[int, float]:
    """Play packets back to back from the first arrival; a packet that arrives after the
    previous one finished playing is a gap (an underrun the caller hears)."""
    gaps, gap_s, play_end = 0, 0.0, None
    for arrival, duration in arrivals:
        if play_end is not None and arrival > play_end + GAP_TOLERANCE_S:
            gaps += 1
            gap_s += arrival - play_end
        play_end = max(play_end or arrival, arrival) + duration
    return gaps, gap_s * 1000


async def main(quick: bool) -> None:
    leads = [0.0, 0.02, 0.04, 0.06, 0.1, 0.2]
    conditions = [(10.0, 10.0), (30.0, 20.0), (60.0, 40.0)] if not quick else [(30.0, 20.0)]
    seconds = 3.0 if quick else 8.0
    print(f"{'stall ms':>8} {'jitter ms':>9} {'lead ms':>7} {'gaps':>5} {'gap ms':>7} {'gap ms vs lead 0':>17}")
    results = []
    for stall, jitter in conditions:
        base = None
        for lead in leads:
            gaps, gap_ms = await one_run(lead, stall, jitter, seconds, seed=42)
            base = gap_ms if base is None else base
            ratio = gap_ms / base if base else 0.0
            results.append(
                {
                    "stall_ms": stall,
                    "jitter_ms": jitter,
                    "lead_ms": lead * 1000,
                    "gaps": gaps,
                    "gap_ms": round(gap_ms, 1),
                    "ratio_vs_lead0": round(ratio, 3),
                }
            )
            print(f"{stall:8.0f} {jitter:9.0f} {lead * 1000:7.0f} {gaps:5d} {gap_ms:7.1f} {ratio:17.3f}")
    save(results)


def save(results: list[dict[str, float]]) -> None:
    Path("benchmarks/results").mkdir(parents=True, exist_ok=True)
    Path("benchmarks/results/lead.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
