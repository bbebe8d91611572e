"""Markdown tables from load results (the tables in docs/benchmarks.md come from here)."""

from __future__ import annotations

import statistics
from typing import Any

__all__ = ["render"]


def _f(value: Any, fmt: str = "{:.1f}", none: str = "–") -> str:
    if value is None:
        return none
    try:
        return fmt.format(value)
    except (TypeError, ValueError):
        return str(value)


def _get(r: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(r, dict):
            return None
        r = r.get(key)  # type: ignore[assignment]
    return r


#: At this server CPU the level is saturated: "CPU per call" is then only a lower bound.
SATURATED_PCT = 97.0


def _per_call(r: dict[str, Any] | None) -> str:
    """CPU % per call, marked as a lower bound when the server was saturated."""
    value = _get(r, "server", "cpu_pct_per_call") if r else None
    if value is None:
        return "–"
    if (_get(r, "server", "cpu_pct") or 0) >= SATURATED_PCT:
        return f"≥{value:.2f}% (sat.)"
    return f"{value:.2f}%"


def _verdict(r: dict[str, Any]) -> str:
    v = r.get("verdict", {})
    if v.get("keeps_up"):
        return "**yes**"
    reasons = v.get("reasons") or ["?"]
    return "no: " + "; ".join(reasons[:2])


def _probed(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The levels run with latency probes (the no-probe level only shows what probes cost)."""
    return [r for r in results if r["level"].get("probe", True)]


def level_table(results: list[dict[str, Any]]) -> str:
    head = (
        "| system | VAD | N | keeps up | server CPU | CPU/call | RSS/call | echo p50 / p99 | growth "
        "| in p50 / p99 | out p50 / p99 | jitter p99 | underruns | lost | gen. CPU |\n"
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for r in results:
        lv = r["level"]
        system = lv["system"] + ("" if lv.get("probe", True) else " (no probe)")
        rows.append(
            "| {sys} | {vad} | {n} | {ok} | {cpu}% | {cpc} | {rss} MB | {e50} / {e99} ms | {gr} ms "
            "| {i50} / {i99} ms | {o50} / {o99} ms | {jit} ms | {und} | {lost}% | {gen}% |".format(
                sys=system,
                vad=lv["vad"],
                n=lv["calls"],
                ok=_verdict(r),
                cpu=_f(_get(r, "server", "cpu_pct"), "{:.0f}"),
                cpc=_per_call(r),
                rss=_f(_get(r, "server", "rss_per_call_mb"), "{:.2f}"),
                e50=_f(_get(r, "echo_ms", "p50")),
                e99=_f(_get(r, "echo_ms", "p99")),
                gr=_f(r.get("echo_growth_ms"), "{:.0f}"),
                i50=_f(_get(r, "probe", "inbound_ms", "p50"), "{:.2f}"),
                i99=_f(_get(r, "probe", "inbound_ms", "p99"), "{:.1f}"),
                o50=_f(_get(r, "probe", "outbound_ms", "p50"), "{:.2f}"),
                o99=_f(_get(r, "probe", "outbound_ms", "p99"), "{:.1f}"),
                jit=_f(_get(r, "jitter_ms", "p99")),
                und=_f(r.get("underruns"), "{:.0f}"),
                lost=_f(r.get("lost_pct"), "{:.2f}"),
                gen=_f(_get(r, "client", "cpu_pct"), "{:.0f}"),
            )
        )
    return head + "\n".join(rows) + "\n"


def comparison_table(results: list[dict[str, Any]]) -> str:
    """phonewire vs Pipecat at the levels both ran, as pipecat/phonewire ratios."""
    by_key = {(r["level"]["system"], r["level"]["vad"], r["level"]["calls"]): r for r in _probed(results)}
    rows = []
    for (system, vad, n), pipecat in sorted(by_key.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        if system != "pipecat":
            continue
        pw = by_key.get(("phonewire", vad, n))
        if pw is None:
            continue

        def ratio(*path: str, r_a: dict[str, Any] = pipecat, r_p: dict[str, Any] = pw) -> str:
            a, p = _get(r_a, *path), _get(r_p, *path)
            if not a or not p:
                return "–"
            return f"{a / p:.1f}x"

        rows.append(
            f"| {vad} | {n} | {_per_call(pw)} | {_per_call(pipecat)} | {ratio('server', 'cpu_pct_per_call')} "
            f"| {_f(_get(pw, 'server', 'rss_per_call_mb'), '{:.2f}')} / "
            f"{_f(_get(pipecat, 'server', 'rss_per_call_mb'), '{:.2f}')} MB "
            f"| {_f(_get(pw, 'echo_ms', 'p99'))} / {_f(_get(pipecat, 'echo_ms', 'p99'))} ms "
            f"| {ratio('echo_ms', 'p99')} "
            f"| {_f(_get(pw, 'probe', 'inbound_ms', 'p99'))} + {_f(_get(pw, 'probe', 'outbound_ms', 'p99'))} / "
            f"{_f(_get(pipecat, 'probe', 'inbound_ms', 'p99'))} + "
            f"{_f(_get(pipecat, 'probe', 'outbound_ms', 'p99'))} ms "
            f"| {_verdict(pw)} / {_verdict(pipecat)} |"
        )
    if not rows:
        return ""
    head = (
        "| VAD | N | phonewire CPU/call | Pipecat CPU/call | Pipecat ÷ phonewire | RSS/call pw / Pipecat "
        "| echo p99 pw / Pipecat | ratio | transport in+out p99 pw / Pipecat | keeps up pw / Pipecat |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    )
    return head + "\n".join(rows) + "\n"


def stack_table(results: list[dict[str, Any]]) -> str:
    """phonewire's CPU per call against the bare web stack's at each N both ran: the i-th
    phonewire run is paired with the i-th bare run (the suite interleaves them, so a pair saw
    the same VM speed), and the median of the pairs' ratios is the figure to quote."""
    runs: dict[tuple[int, bool], dict[str, list[dict[str, Any]]]] = {}
    for r in results:
        lv = r["level"]
        if lv["vad"] != "none" or lv["system"] not in ("bare", "phonewire") or "error" in r:
            continue
        runs.setdefault((lv["calls"], lv.get("probe", True)), {}).setdefault(lv["system"], []).append(r)
    rows = []
    for (n, probe), by_system in sorted(runs.items(), key=lambda kv: (kv[0][0], not kv[0][1])):
        pairs = list(zip(by_system.get("bare", []), by_system.get("phonewire", []), strict=False))
        if not pairs:
            continue
        ratios = []
        for bare, pw in pairs:
            b, v = _get(bare, "server", "cpu_pct_per_call"), _get(pw, "server", "cpu_pct_per_call")
            if b and v and (_get(pw, "server", "cpu_pct") or 0) < SATURATED_PCT:
                ratios.append(v / b)
        kept = sum(1 for _, pw in pairs if pw.get("verdict", {}).get("keeps_up"))
        rows.append(
            f"| {n} | {'yes' if probe else 'no'} | {', '.join(_per_call(b) for b, _ in pairs)} "
            f"| {', '.join(_per_call(p) for _, p in pairs)} | {', '.join(f'{x:.2f}x' for x in ratios) or '–'} "
            f"| **{_f(statistics.median(ratios) if ratios else None, '{:.2f}x')}** | {kept} of {len(pairs)} |"
        )
    if not rows:
        return ""
    head = (
        "| N | probes | bare web stack CPU/call | phonewire CPU/call | ÷ bare, each pair | median "
        "| phonewire kept up |\n"
        "|---:|---|---:|---:|---:|---:|---:|\n"
    )
    return head + "\n".join(rows) + "\n"


def capacity_lines(results: list[dict[str, Any]]) -> str:
    best: dict[tuple[str, str], tuple[int, int | None]] = {}
    for r in _probed(results):
        lv = r["level"]
        key = (lv["system"], lv["vad"])
        kept, first_fail = best.get(key, (0, None))
        if r.get("verdict", {}).get("keeps_up"):
            kept = max(kept, lv["calls"])
        elif first_fail is None or lv["calls"] < first_fail:
            first_fail = lv["calls"]
        best[key] = (kept, first_fail)
    lines = []
    for (system, vad), (kept, fail) in sorted(best.items()):
        tail = f", falls behind at {fail}" if fail else ", every level run kept up"
        lines.append(f"- {system}, VAD {vad}: keeps up with {kept} calls on one core{tail}")
    return "\n".join(lines) + "\n"


def render(results: list[dict[str, Any]], machine: dict[str, Any], title: str = "Load results") -> str:
    versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items() if v)
    parts = [
        f"## {title}\n",
        f"Machine: {machine.get('cpus')} × {machine.get('cpu_model')}, {machine.get('mem_gb')} GB, "
        f"Linux {machine.get('kernel')}, Python {machine.get('python')}; {versions}; "
        f"phonewire at {machine.get('git')}.\n",
        capacity_lines(results),
        level_table(results),
    ]
    comparison = comparison_table(results)
    if comparison:
        parts += ["\nphonewire vs Pipecat, same run:\n\n", comparison]
    stack = stack_table(results)
    if stack:
        parts += ["\nphonewire vs the bare web stack (same uvicorn, no framework), no VAD:\n\n", stack]
    return "\n".join(parts)
