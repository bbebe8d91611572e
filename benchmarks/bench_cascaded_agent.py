"""A cascaded phone agent per core: phonewire vs Pipecat 1.14, on the same fakes, in the same run.

The agent (VAD -> Deepgram STT -> OpenAI-compatible LLM -> Cartesia TTS, the greeting from the
LLM) at 25, 50 and 100 concurrent Twilio calls on one core:

* the server **pinned to core 0** (``taskset -c 0``, ``sched_setaffinity`` where taskset is
  missing), one fresh process per level: phonewire (``load/server_cascaded_agent.py``:
  examples/deepgram_cartesia_agent.py's pipeline on ``create_app``, μ-law passed through both
  ways) or Pipecat 1.14 (``pipecat/cascaded_agent.py``: pipecat's own ``DeepgramSTTService``,
  ``OpenAILLMService`` and ``CartesiaTTSService``, run with Pipecat's venv);
* **on core 1**: the three fakes in a process of their own (``load/agent_fakes.py``:
  ``FakeDeepgramServer``, ``FakeOpenAIServer`` with a fixed 250 ms to the first token,
  ``FakeCartesiaServer`` with a fixed 120 ms to the first audio; fresh per level) and the
  callers (``load/agent_client.py``: a conversational caller per call, real time, 20 ms μ-law
  packets both ways);
* the levels interleaved (phonewire 25, Pipecat 25, phonewire 50, ...), so both frameworks meet
  the same VM drift.

Per level: server CPU per call and RSS per call (psutil), response latency median/p95 (caller
stops -> first bot audio heard, on the caller's side), missed replies, underruns inside replies,
the fakes' own measured delays and their process's CPU. "Real time" = every call connected, no
reply missed, at most 0.1 underruns per call-minute, response p95 within 100 ms of the median
and the median not growing over the window (< 20 ms). Expected latency = the turn
decision (0.8 s of silence, both frameworks) + the LLM's first token + the TTS's first byte;
"own" = median - expected (target <= 30 ms).

    .venv/bin/python benchmarks/bench_cascaded_agent.py            # ~8 min; writes results/cascaded_agent.json
    .venv/bin/python benchmarks/bench_cascaded_agent.py --quick    # ~1.5 min smoke: 3 calls each, not saved
    .venv/bin/python benchmarks/bench_cascaded_agent.py --levels 100 --no-pipecat
    .venv/bin/python benchmarks/bench_cascaded_agent.py --baseline-src /tmp/old/src   # + "phonewire-baseline"

``--baseline-src DIR`` adds a third server per level, ``phonewire-baseline``: the same server script
with ``PYTHONPATH=DIR`` (another checkout's ``src``, e.g. ``git archive HEAD~3 src | tar -x -C
/tmp/old``), so a change is measured before/after in one run, on the same fakes and callers.

The first run creates Pipecat's venv (``.bench-cache/pipecat-venv``, pipecat-ai
``[websocket,deepgram,cartesia,openai,silero]==1.14.0``; PyPI needed once).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "load"))

import pipecat_env  # noqa: E402
import runner  # noqa: E402

RESULTS = HERE / "results" / "cascaded_agent.json"
TURN_DECISION_MS = 800.0  # phonewire: VAD stop_secs 0.8; Pipecat: VAD stop_secs 0.2 + 0.6 s speech timeout
LLM_FIRST_TOKEN_MS = 250.0
TTS_FIRST_BYTE_MS = 120.0
OWN_TARGET_MS = 30.0
CPU_RATIO_TARGET = 4.0


def expected_ms(llm_ms: float, tts_ms: float) -> float:
    return TURN_DECISION_MS + llm_ms + tts_ms


def _psutil_cpu(pid: int) -> float | None:
    try:
        import psutil

        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    except Exception:
        return None


class Fakes:
    """The fakes' process (pinned to the callers' core), for one level."""

    def __init__(self, cpu: int | None, llm_ms: float, tts_ms: float, log: Path) -> None:
        cmd = [sys.executable, str(HERE / "load" / "agent_fakes.py"),
               "--llm-first-token-ms", str(llm_ms), "--tts-first-byte-ms", str(tts_ms)]  # fmt: skip
        self._log = open(log, "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            runner._pinned(cmd, cpu), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fakes did not start; see {log}")
        self.info: dict[str, Any] = json.loads(line)
        self.cpu0 = _psutil_cpu(self.proc.pid)
        self.t0 = time.monotonic()

    def env(self) -> dict[str, str]:
        keys = self.info["keys"]
        return {
            "DEEPGRAM_BASE_URL": self.info["deepgram"],
            "DEEPGRAM_API_KEY": keys["deepgram"],
            "OPENAI_BASE_URL": self.info["openai"],
            "OPENAI_API_KEY": keys["openai"],
            "CARTESIA_BASE_URL": self.info["cartesia"],
            "CARTESIA_API_KEY": keys["cartesia"],
        }

    def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        out: dict[str, Any] = json.loads(self.proc.stdout.readline())
        cpu1 = _psutil_cpu(self.proc.pid)
        if self.cpu0 is not None and cpu1 is not None:
            out["process_cpu_pct"] = round(100 * (cpu1 - self.cpu0) / (time.monotonic() - self.t0), 1)
        return out

    def stop(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(10)
        except (subprocess.TimeoutExpired, OSError):
            self.proc.kill()
            self.proc.wait(5)
        finally:
            self._log.close()


def run_level(system: str, calls: int, args: argparse.Namespace, pipecat_python: Path | None) -> dict[str, Any]:
    server_cpu, client_cpu = runner.cpus()
    logs = runner.CACHE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%H%M%S")
    level = {"system": system, "calls": calls, "warmup": args.warmup, "measure": args.measure,
             "pinned": {"server": server_cpu, "callers_and_fakes": client_cpu}}  # fmt: skip
    result: dict[str, Any] = {}
    fakes = server = None
    try:
        fakes = Fakes(client_cpu, args.llm_first_token_ms, args.tts_first_byte_ms, logs / f"fakes-{calls}-{stamp}.log")
        port = runner._free_port()
        server_env = {**os.environ, **fakes.env()}
        if system in ("phonewire", "phonewire-baseline"):
            cmd = [sys.executable, str(HERE / "load" / "server_cascaded_agent.py"), "--port", str(port)]
            if system == "phonewire-baseline":
                server_env["PYTHONPATH"] = str(args.baseline_src)
        else:
            assert pipecat_python is not None
            cmd = [str(pipecat_python), str(HERE / "pipecat" / "cascaded_agent.py"), "--port", str(port)]
        server_log = logs / f"agent-{system}-{calls}-{stamp}.log"
        with open(server_log, "wb") as err:
            server = subprocess.Popen(
                runner._pinned(cmd, server_cpu), stdout=err, stderr=subprocess.STDOUT, cwd=runner.REPO,
                env=server_env,
            )  # fmt: skip
        runner._wait_healthy(port, server)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            ramp = max(1.0, calls / 25)
            cmd = [sys.executable, str(HERE / "load" / "agent_client.py"), "--port", str(port),
                   "--calls", str(calls), "--warmup", str(args.warmup), "--measure", str(args.measure),
                   "--ramp", str(ramp), "--server-pid", str(server.pid), "--json", str(out)]  # fmt: skip
            budget = 90 + ramp + args.warmup + args.measure
            done = subprocess.run(runner._pinned(cmd, client_cpu), cwd=runner.REPO, timeout=budget, capture_output=True)
            if done.returncode != 0 or not out.exists():
                tail = done.stderr.decode(errors="replace")[-2000:]
                raise RuntimeError(f"callers failed ({done.returncode}):\n{tail}")
            result = json.loads(out.read_text())
        result["fakes"] = fakes.stats()
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        if server is not None:
            runner._stop(server)
        if fakes is not None:
            fakes.stop()
    result["level"] = level
    result["verdict"] = judge(result, expected_ms(args.llm_first_token_ms, args.tts_first_byte_ms))
    return result


def judge(result: dict[str, Any], expected: float) -> dict[str, Any]:
    if "error" in result:
        return {"real_time": False, "reasons": [result["error"][:300]]}
    reasons = []
    if result.get("failed"):
        reasons.append(f"{result['failed']} calls failed to connect")
    resp = result.get("response_ms", {})
    if not resp.get("count"):
        reasons.append("no turn answered")
    elif resp["p95"] - resp["p50"] > 100:
        reasons.append(f"response p95 {resp['p95']:.0f} ms, {resp['p95'] - resp['p50']:.0f} ms over the median")
    if result.get("missed_replies"):
        reasons.append(f"{result['missed_replies']} replies missed (> 10 s)")
    if result.get("underruns_per_call_minute", 0.0) > 0.1:
        reasons.append(f"{result['underruns_per_call_minute']:.2f} underruns per call-minute")
    if result.get("response_growth_ms", 0.0) > 20:
        reasons.append(f"response latency grew {result['response_growth_ms']:.0f} ms over the window")
    client_cpu = (result.get("client") or {}).get("cpu_pct")
    fakes_cpu = (result.get("fakes") or {}).get("process_cpu_pct")
    if client_cpu is not None and fakes_cpu is not None and client_cpu + fakes_cpu > 90:
        reasons.append(f"callers + fakes at {client_cpu + fakes_cpu:.0f}% of their core: numbers not trustworthy")
    own = resp.get("p50", float("nan")) - expected if resp.get("count") else None
    stages = (result.get("probe") or {}).get("turn_stage_medians_ms") or {}
    fakes = result.get("fakes") or {}
    llm = (fakes.get("openai") or {}).get("first_token_ms", {}).get("median")
    tts = (fakes.get("cartesia") or {}).get("first_byte_ms", {}).get("median")
    own_transport = (
        round(stages["first_audio_heard"] - stages["vad_stop"] - llm - tts, 1)
        if "first_audio_heard" in stages and "vad_stop" in stages and llm is not None and tts is not None
        else None
    )  # phonewire only: the transport's clock (from the VAD's stop), minus the fakes' measured delays
    return {"real_time": not reasons, "reasons": reasons, "expected_ms": expected,
            "own_median_ms": None if own is None else round(own, 1),
            "own_met": own is not None and own <= OWN_TARGET_MS,
            "own_transport_clock_ms": own_transport}  # fmt: skip


def row(r: dict[str, Any]) -> dict[str, Any]:
    lv, server, resp = r["level"], r.get("server", {}), r.get("response_ms", {})
    return {
        "system": lv["system"],
        "calls": lv["calls"],
        "cpu_pct": server.get("cpu_pct"),
        "cpu_pct_per_call": server.get("cpu_pct_per_call"),
        "rss_per_call_mb": server.get("rss_per_call_mb"),
        "response_p50_ms": resp.get("p50"),
        "response_p95_ms": _p95(r),
        "turns": r.get("turns"),
        "missed": r.get("missed_replies"),
        "underruns_per_call_minute": r.get("underruns_per_call_minute"),
        "own_median_ms": r["verdict"].get("own_median_ms"),
        "own_transport_clock_ms": r["verdict"].get("own_transport_clock_ms"),
        "real_time": r["verdict"]["real_time"],
        "reasons": r["verdict"]["reasons"],
    }


def _p95(r: dict[str, Any]) -> float | None:
    resp = r.get("response_ms", {})
    if not resp.get("count"):
        return None
    return float(resp["p95"])


def render(rows: list[dict[str, Any]], ratios: dict[int, float | None]) -> str:
    def f(v: Any, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    lines = [
        "| N | framework | server CPU | CPU/call | RSS/call | response p50 | p95 | turns | missed | underruns/call-min"
        " | own (p50 - expected) | real time |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for x in rows:
        lines.append(
            f"| {x['calls']} | {x['system']} | {f(x['cpu_pct'], '.0f')}% | {f(x['cpu_pct_per_call'], '.2f')}%"
            f" | {f(x['rss_per_call_mb'], '.2f')} MB | {f(x['response_p50_ms'], '.0f')} ms"
            f" | {f(x['response_p95_ms'], '.0f')} ms | {f(x['turns'], 'd')} | {f(x['missed'], 'd')}"
            f" | {f(x['underruns_per_call_minute'], '.2f')} | {f(x['own_median_ms'], '+.0f')} ms"
            f" | {'yes' if x['real_time'] else 'no: ' + '; '.join(x['reasons'])} |"
        )
    lines.append("")
    for n, ratio in ratios.items():
        lines.append(f"N={n}: Pipecat CPU/call / phonewire CPU/call = {f(ratio, '.2f')}x")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--measure", type=float, default=30.0)
    parser.add_argument("--llm-first-token-ms", type=float, default=LLM_FIRST_TOKEN_MS)
    parser.add_argument("--tts-first-byte-ms", type=float, default=TTS_FIRST_BYTE_MS)
    parser.add_argument("--no-pipecat", action="store_true", help="phonewire only (no Pipecat venv)")
    parser.add_argument("--quick", action="store_true", help="3 calls per framework, 12 s windows; not saved")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="another phonewire src tree, run as 'phonewire-baseline' at each level")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.levels, args.warmup, args.measure = [3], 4.0, 12.0
    started = time.monotonic()
    pipecat_python = None if args.no_pipecat else pipecat_env.ensure_pipecat_venv(runner.CACHE / "pipecat-venv")
    systems = (
        ["phonewire"] + (["phonewire-baseline"] if args.baseline_src else []) + ([] if args.no_pipecat else ["pipecat"])
    )
    results: list[dict[str, Any]] = []
    for calls in args.levels:
        for system in systems:
            t = time.monotonic()
            r = run_level(system, calls, args, pipecat_python)
            results.append(r)
            x = row(r)
            print(
                f"{system:18} N={calls:3}: CPU {x['cpu_pct'] or 0:5.1f}% ({x['cpu_pct_per_call'] or 0:.2f}%/call),"
                f" RSS {x['rss_per_call_mb'] or 0:.2f} MB/call, response p50 {x['response_p50_ms'] or 0:.0f} ms"
                f" p95 {x['response_p95_ms'] or 0:.0f} ms, {x['turns']} turns, {x['missed']} missed,"
                f" underruns/call-min {x['underruns_per_call_minute'] or 0:.2f},"
                f" {'real time' if x['real_time'] else 'NOT real time: ' + '; '.join(x['reasons'])}"
                f" [{time.monotonic() - t:.0f} s]",
                flush=True,
            )
    rows = [row(r) for r in results]
    ratios: dict[int, float | None] = {}
    baseline_ratios: dict[int, float | None] = {}
    for calls in args.levels:
        pw = next((x for x in rows if x["system"] == "phonewire" and x["calls"] == calls), None)
        pc = next((x for x in rows if x["system"] == "pipecat" and x["calls"] == calls), None)
        ratios[calls] = (
            round(pc["cpu_pct_per_call"] / pw["cpu_pct_per_call"], 2)
            if pw and pc and pw["cpu_pct_per_call"] and pc["cpu_pct_per_call"]
            else None
        )
        bl = next((x for x in rows if x["system"] == "phonewire-baseline" and x["calls"] == calls), None)
        if bl is not None:
            baseline_ratios[calls] = (
                round(bl["cpu_pct_per_call"] / pw["cpu_pct_per_call"], 2)
                if pw and pw["cpu_pct_per_call"] and bl["cpu_pct_per_call"]
                else None
            )
    table = render(rows, ratios)
    for n, ratio in baseline_ratios.items():
        table += (
            f"\nN={n}: phonewire-baseline CPU/call / phonewire CPU/call = {'-' if ratio is None else f'{ratio:.2f}'}x"
        )
    print("\n" + table)
    out = {
        "benchmark": "cascaded_agent",
        "fake_latencies_ms": {"llm_first_token": args.llm_first_token_ms, "tts_first_byte": args.tts_first_byte_ms,
                              "deepgram": "audio-driven (finals 10 ms after speech, at once on Finalize)"},
        "turn_decision_ms": TURN_DECISION_MS,
        "expected_response_ms": expected_ms(args.llm_first_token_ms, args.tts_first_byte_ms),
        "targets": {"cpu_ratio": CPU_RATIO_TARGET, "own_ms": OWN_TARGET_MS, "real_time_calls": 100},
        "cpu_ratio_pipecat_over_phonewire": {str(k): v for k, v in ratios.items()},
        **({"baseline_src": str(args.baseline_src),
            "cpu_ratio_baseline_over_phonewire": {str(k): v for k, v in baseline_ratios.items()}}
           if args.baseline_src else {}),
        "rows": rows,
        "machine": runner.machine_info(),
        "wall_s": round(time.monotonic() - started, 1),
        "levels": results,
    }  # fmt: skip
    print(f"\n{out['wall_s']} s")
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
