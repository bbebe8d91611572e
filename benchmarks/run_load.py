"""Calls per core: N simulated Twilio calls against an echo bot, phonewire and Pipecat.

The full suite, about 19 minutes (Pipecat's virtual environment is created on first use,
a few minutes more)::

    .venv/bin/python benchmarks/run_load.py

Every level runs in fresh processes: the server pinned to core 0, the load generator to core 1
(see benchmarks/README.md). Results go to ``.bench-cache/results/load-<time>.json`` and a
Markdown report next to it (also ``.bench-cache/results/latest.md``), the source of the tables
in docs/benchmarks.md.

The suite: the bare web stack (N = 100, 200, 400), phonewire as shipped (N = 1 … 400, VAD off
and Silero), Pipecat (N = 1, 10, 50 without VAD, 1, 10, 20 with Silero), one phonewire level
with Silero but without cross-call batching (its gain), and an A/B of phonewire against the bare
web stack without latency probes (N = 100 and 200, three interleaved rounds: the ratio the
issue's "within a factor of two" target is judged by, with the VM's drift averaged out).

Other uses::

    .venv/bin/python benchmarks/run_load.py --quick          # CI smoke: phonewire, N=1 and 3, ~20 s
    .venv/bin/python benchmarks/run_load.py --only phonewire:none:100,200 --measure 30
    .venv/bin/python benchmarks/run_load.py --no-pipecat      # skip Pipecat (no extra venv)
    .venv/bin/python benchmarks/run_load.py --only phonewire:none:200 --only bare:none:200 \
        --no-probe --repeat 3 --no-pipecat                      # an A/B, interleaved against drift
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import report
from load.pipecat_env import ensure_pipecat_venv
from load.runner import CACHE, Level, machine_info, run_level

ALL = (1, 10, 50, 100, 200, 400)
#: (system, VAD, N) of the full suite, in the order run.
SUITE: list[tuple[str, str, tuple[int, ...]]] = [
    ("bare", "none", (100, 200, 400)),
    ("phonewire", "none", ALL),
    ("pipecat", "none", (1, 10, 50)),
    ("phonewire", "silero", ALL),
    ("phonewire", "silero-nobatch", (100,)),
    ("pipecat", "silero", (1, 10, 20)),
]
#: Without probes, interleaved: phonewire's CPU per call against the bare web stack's.
STACK_AB: list[tuple[str, int]] = [("bare", 100), ("phonewire", 100), ("bare", 200), ("phonewire", 200)]
STACK_AB_ROUNDS = 3


def suite(args: argparse.Namespace) -> list[Level]:
    timing = {"warmup": args.warmup, "measure": args.measure}
    if args.quick:
        return [Level("phonewire", "none", n, warmup=1.0, measure=4.0, ramp=0.5, warmup_call=False) for n in (1, 3)]
    if args.only:
        levels = []
        for spec in args.only:
            system, vad, calls = spec.split(":")
            levels += [Level(system, vad, int(n), probe=not args.no_probe, **timing) for n in calls.split(",")]
        return levels
    levels = []
    for system, vad, calls in SUITE:
        if system == "pipecat" and args.no_pipecat:
            continue
        levels += [Level(system, vad, n, **timing) for n in calls]
    for _ in range(STACK_AB_ROUNDS):
        levels += [Level(system, "none", n, probe=False, **timing) for system, n in STACK_AB]
    return levels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run: phonewire only, N=1 and 3, ~20 s")
    parser.add_argument(
        "--only",
        action="append",
        metavar="SYSTEM:VAD:N,N",
        help="run just these levels (system: phonewire, pipecat, bare; VAD: none, silero, silero-nobatch); repeatable",
    )
    parser.add_argument("--no-pipecat", action="store_true", help="skip Pipecat's levels")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after ramp-up before measuring")
    parser.add_argument("--measure", type=float, default=20.0, help="seconds measured per level")
    parser.add_argument("--no-probe", action="store_true", help="--only levels without latency probes")
    parser.add_argument("--repeat", type=int, default=1, help="run the whole list this many times, interleaved")
    parser.add_argument("--out", default=None, help="results JSON path")
    args = parser.parse_args(argv)

    levels = suite(args) * max(1, args.repeat)
    pipecat_python = None
    if any(lv.system == "pipecat" for lv in levels):
        pipecat_python = ensure_pipecat_venv(CACHE / "pipecat-venv")
    results: list[dict[str, Any]] = []
    started = time.monotonic()
    src_at_start = machine_info().get("src_tree")
    for i, level in enumerate(levels, 1):
        t0 = time.monotonic()
        print(f"[{i}/{len(levels)}] {level.label} ...", end="", flush=True)
        result = run_level(level, pipecat_python=pipecat_python)
        results.append(result)
        print(f" {time.monotonic() - t0:.0f}s  {_line(result)}", flush=True)
    machine = machine_info()
    if machine.get("src_tree") != src_at_start:
        machine["git"] = (
            f"{machine.get('git')}; src/ CHANGED DURING THE RUN (tree {src_at_start} -> {machine['src_tree']})"
        )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else CACHE / "results" / f"load-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "results": results}, indent=1))
    markdown = report.render(results, machine)
    out.with_suffix(".md").write_text(markdown)
    (out.parent / "latest.md").write_text(markdown)
    print(f"\n{markdown}\nresults: {out} (+ .md); {time.monotonic() - started:.0f}s in all")
    return 0


def _line(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"ERROR {r['error'][:300]}"
    s = r.get("server", {})
    e = r.get("echo_ms", {})
    ok = "keeps up" if r["verdict"]["keeps_up"] else "behind: " + "; ".join(r["verdict"]["reasons"])
    return (
        f"cpu {s.get('cpu_pct', 0):.0f}% ({s.get('cpu_pct_per_call', 0):.2f}%/call) "
        f"rss/call {s.get('rss_per_call_mb') or 0:.2f} MB "
        f"echo p50/p99 {e.get('p50', 0):.1f}/{e.get('p99', 0):.1f} ms "
        f"underruns {r.get('underruns')} lost {r.get('lost_pct', 0):.2f}% "
        f"gen {r['client'].get('cpu_pct') or 0:.0f}% | {ok}"
    )


if __name__ == "__main__":
    sys.exit(main())
