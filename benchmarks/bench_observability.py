"""CPU per call with metrics + JSON logs on against off, in the same run (issue 18).

``on`` is what ``phonewire serve`` does: prometheus-client in multiprocess mode (values in
memory-mapped files) fed by the call hooks, the watchdog's send-lead samples, and JSON log
lines at INFO (each call's start and end); ``off`` clears the call hooks and logs at ERROR.
Both run the load benchmark's echo server and generator (``benchmarks/load/``): N calls,
server pinned to one core, no latency probes, ``--rounds`` interleaved off/on pairs so VM
drift hits both alike; the median of the pairs' ratios is the verdict (target < 3 %).

    .venv/bin/python benchmarks/bench_observability.py            # 100 calls, 3 pairs, ~4 min
    .venv/bin/python benchmarks/bench_observability.py --calls 20 --rounds 1 --measure 5   # smoke
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load.runner import CACHE, Level, machine_info, run_level


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--measure", type=float, default=20.0)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for r in range(args.rounds):
        for mode in ("off", "on"):
            level = Level("phonewire", "none", args.calls, warmup=args.warmup, measure=args.measure, probe=False,
                          extra_server_args=["--observability", mode])  # fmt: skip
            result = run_level(level, log=lambda *a: None)
            server = result.get("server", {})
            row = {"round": r, "mode": mode, "cpu_pct": server.get("cpu_pct"), "keeps_up": result["verdict"]}
            rows.append(row)
            print(f"round {r} {mode:>3}: server CPU {row['cpu_pct']}% ({result['verdict']})", flush=True)
    ratios = []
    for r in range(args.rounds):
        off, on = (next(x["cpu_pct"] for x in rows if x["round"] == r and x["mode"] == m) for m in ("off", "on"))
        if off and on:
            ratios.append(on / off - 1)
    summary = {
        "calls": args.calls,
        "rows": rows,
        "pair_differences_pct": [round(100 * x, 2) for x in ratios],
        "median_difference_pct": round(100 * statistics.median(ratios), 2) if ratios else None,
        "machine": machine_info(),
    }
    out = CACHE / "results" / f"observability-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("pair_differences_pct", "median_difference_pct")}), f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
