"""Calls per core: N simulated Twilio calls against an echo bot, phonewire and the anchor.

The full suite (about 15 minutes; the anchor's virtual environment is created on first use)::

    .venv/bin/python benchmarks/run_load.py

Every level runs in fresh processes: the server pinned to core 0, the load generator to core 1
(see benchmarks/README.md). Results go to ``.bench-cache/results/load-<time>.json`` and a
Markdown report next to it (``.bench-cache/results/latest.md``), the source of the tables in
docs/benchmarks.md.

Other uses::

    .venv/bin/python benchmarks/run_load.py --quick                 # CI smoke: phonewire, N=1,3, ~20 s
    .venv/bin/python benchmarks/run_load.py --systems phonewire --vad none --calls 100,200
    .venv/bin/python benchmarks/run_load.py --prototypes            # adds phonewire silero-batched levels
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import report  # noqa: E402
from load.anchor_env import ensure_anchor_venv  # noqa: E402
from load.runner import CACHE, Level, machine_info, run_level  # noqa: E402

PHONEWIRE_CALLS = (1, 10, 50, 100, 200, 400)
ANCHOR_CALLS = {"none": (1, 10, 50), "silero": (1, 10)}


def suite(args: argparse.Namespace) -> list[Level]:
    if args.quick:
        return [
            Level("phonewire", "none", n, warmup=1.0, measure=4.0, ramp=0.5, warmup_call=False) for n in (1, 3)
        ]
    vads = args.vad.split(",")
    systems = args.systems.split(",")
    levels: list[Level] = []
    for vad in vads:
        for system in systems:
            if system == "phonewire":
                calls = _calls(args.calls) or PHONEWIRE_CALLS
            else:
                if vad not in ANCHOR_CALLS and not args.calls:
                    continue
                calls = _calls(args.calls) or ANCHOR_CALLS[vad]
            levels += [Level(system, vad, n, warmup=args.warmup, measure=args.measure, probe=not args.no_probe) for n in calls]
    if args.prototypes:
        levels += [
            Level("phonewire", "silero-batched", n, warmup=args.warmup, measure=args.measure)
            for n in (_calls(args.calls) or PHONEWIRE_CALLS)
        ]
    return levels


def _calls(text: str | None) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",")) if text else ()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run: phonewire only, N=1 and 3, ~20 s")
    parser.add_argument("--systems", default="phonewire,anchor")
    parser.add_argument("--vad", default="none,silero", help="comma list of none, silero, silero-batched")
    parser.add_argument("--calls", default=None, help="comma list of N (default: the suite's)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after ramp-up before measuring")
    parser.add_argument("--measure", type=float, default=20.0, help="seconds measured per level")
    parser.add_argument("--no-probe", action="store_true", help="servers without latency probes")
    parser.add_argument("--prototypes", action="store_true", help="also run the batched-VAD prototype")
    parser.add_argument("--out", default=None, help="results JSON path")
    args = parser.parse_args(argv)

    levels = suite(args)
    anchor_python = None
    if any(lv.system == "anchor" for lv in levels):
        anchor_python = ensure_anchor_venv(CACHE / "anchor-venv")
    results: list[dict[str, Any]] = []
    started = time.monotonic()
    for i, level in enumerate(levels, 1):
        t0 = time.monotonic()
        print(f"[{i}/{len(levels)}] {level.label} ...", end="", flush=True)
        result = run_level(level, anchor_python=anchor_python)
        results.append(result)
        print(f" {time.monotonic() - t0:.0f}s  {_line(result)}", flush=True)
    machine = machine_info()
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
        f"rss/call {s.get('rss_per_call_mb') or 0:.2f} MB echo p50/p99 {e.get('p50', 0):.1f}/{e.get('p99', 0):.1f} ms "
        f"underruns {r.get('underruns')} lost {r.get('lost_pct', 0):.2f}% gen {r['client'].get('cpu_pct') or 0:.0f}% | {ok}"
    )


if __name__ == "__main__":
    sys.exit(main())
