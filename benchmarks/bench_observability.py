"""CPU per call with metrics + JSON logs on against off, in the same run (issue 18).

``on`` is what ``phonewire serve`` does: prometheus-client in multiprocess mode (values in
memory-mapped files) fed by the call hooks, the watchdog's send-lead samples, and JSON log
lines at INFO (each call's start and end); ``off`` clears the call hooks and logs at ERROR.
Both run the load benchmark's echo server and generator (``benchmarks/load/``): N calls,
server pinned to one core, no latency probes, ``--rounds`` interleaved off/on pairs so VM
drift hits both alike; the median of the pairs' ratios is the verdict (target < 3 %).

    .venv/bin/python benchmarks/bench_observability.py            # 100 calls, 3 pairs, ~4 min
    .venv/bin/python benchmarks/bench_observability.py --calls 20 --rounds 1 --measure 5   # smoke

The A/B cannot resolve 3 % on a shared VM (pair-to-pair noise is +-10 %), so ``--per-call``
(~45 s) accounts for it instead, deterministically and in-process: it times (process CPU,
best of several repetitions of many iterations) each piece of work observability adds to a
call, with the real objects - the metrics hooks at call start and end and per turn
(prometheus-client in multiprocess mode, as ``phonewire serve`` sets it), the gauges the server
moves per stream, the send-lead sample once a second and its histogram observation, the JSON
log lines a real call logs (counted from a real call served by ``create_app`` on uvicorn with
``phonewire serve``'s JSON logging, each re-logged through the real formatter and a stream
handler), and the ``/metrics`` scrape shared by the calls of a process - and compares the sum
with the CPU a call itself costs, measured in the same run on the load benchmark's echo server
(observability off, ``--per-call-calls`` calls, CPU per call-minute).

    .venv/bin/python benchmarks/bench_observability.py --per-call
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
    parser.add_argument("--per-call", action="store_true", help="the deterministic per-call accounting (~45 s)")
    parser.add_argument("--per-call-calls", type=int, default=100, help="echo calls whose CPU is the reference")
    args = parser.parse_args()
    if args.per_call:
        return per_call(args.per_call_calls)
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


# --- the per-call accounting (--per-call) ------------------------------------------------------

#: Iterations per timed repetition, and repetitions (the best one counts: the least disturbed).
ITERATIONS = 2000
REPEATS = 5
#: What an agent call adds per minute beyond the echo: answered turns (each: a histogram
#: observation per stage and its "= turn N: ..." log line).
TURNS_PER_MINUTE = 6
#: Prometheus scrape interval (s): one /metrics render per interval, shared by a process's calls.
SCRAPE_SECS = 15.0
REAL_CALL_SECS = 4.0


def _cpu_us(fn: Any, iterations: int = ITERATIONS) -> float:
    """CPU microseconds per ``fn()``: the best of ``REPEATS`` timed runs (process_time)."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.process_time()
        for _ in range(iterations):
            fn()
        best = min(best, time.process_time() - start)
    return best / iterations * 1e6


def _real_call_log() -> tuple[list[Any], int, float]:
    """One real call on ``create_app`` under uvicorn, logging as ``phonewire serve
    --log-format json`` does (root and uvicorn loggers at INFO): the records it produced, its
    send-lead samples and its length (s)."""
    import asyncio
    import logging

    import uvicorn

    from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
    from phonewire.processors import EchoProcessor
    from phonewire.server import ServerConfig, create_app
    from phonewire.server.json_logs import configure_logging, uvicorn_log_config
    from phonewire.testing import HangUp, Say, Silence, simulate_call

    class Capture(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.INFO)
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    stats: list[Any] = []

    async def bot(transport: Any, call: Any) -> None:
        stats.append(transport.stats)
        task = PipelineTask(Pipeline([transport.input(), EchoProcessor(), transport.output()]))
        await PipelineRunner(handle_sigint=False).run(task)

    async def run() -> tuple[list[Any], float]:
        configure_logging("info", "json")
        capture = Capture()
        logging.getLogger().handlers = [capture]  # the start-up lines are not the call's
        app = create_app(bot, ServerConfig(vad=None, stream_secret=None))
        config = uvicorn.Config(app, host="127.0.0.1", port=0, ws="websockets-sansio", ws_per_message_deflate=False,
                                log_config=uvicorn_log_config("json"), log_level="info", lifespan="on")  # fmt: skip
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        serving = asyncio.get_running_loop().create_task(server.serve())
        while not server.started:  # noqa: ASYNC110  (uvicorn has only the flag)
            await asyncio.sleep(0.01)
        capture.records.clear()
        loggers = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.error", "uvicorn.access")]
        for logger in loggers:  # what the JSON handlers would write, kept instead
            logger.handlers = [capture] if logger.handlers else []
        port = server.servers[0].sockets[0].getsockname()[1]
        # The caller talks (a 1 kHz tone stands in for speech): the echo makes the bot speak,
        # so the watchdog takes its send-lead samples as in a conversation.
        import numpy as np

        t = np.arange(int(8000 * (REAL_CALL_SECS - 0.5))) / 8000
        speech = (np.sin(2 * np.pi * 1000 * t) * 8000).astype("<i2").tobytes()
        report = await simulate_call(f"ws://127.0.0.1:{port}/ws", script=[Say(speech), Silence(0.5), HangUp()])
        deadline = time.monotonic() + 5  # the server's summary line follows the client's close
        while time.monotonic() < deadline and not any("call ended" in r.getMessage() for r in capture.records):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        records = list(capture.records)
        server.should_exit = True
        await serving
        return records, report.duration_s

    records, secs = asyncio.run(run())
    return records, len(stats[0].send_lead_samples) if stats else 0, secs


def _echo_cpu_per_call_minute(calls: int) -> tuple[float, float]:
    """(server CPU %, CPU seconds per call-minute) of the load benchmark's echo server with
    observability off: what a call costs by itself."""
    level = Level("phonewire", "none", calls, warmup=3.0, measure=15.0, probe=False, warmup_call=False,
                  extra_server_args=["--observability", "off"])  # fmt: skip
    result = run_level(level, log=lambda *a: None)
    cpu_pct = float(result.get("server", {}).get("cpu_pct") or 0.0)
    return cpu_pct, cpu_pct / 100 * 60 / calls


def per_call(calls: int) -> int:
    import logging
    import os
    import tempfile
    from types import SimpleNamespace

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-obs-")  # as phonewire serve: first
    from phonewire.server.json_logs import CALL_CONTEXT, JsonFormatter
    from phonewire.server.lifecycle import MetricsHook
    from phonewire.server.metrics import Metrics
    from phonewire.transports.fastapi import FastAPIWebsocketTransport
    from phonewire.transports.pacer import Pacer
    from phonewire.transports.stats import TransportStats

    started = time.monotonic()
    print(f"a real call ({REAL_CALL_SECS:.0f} s) with JSON logs at INFO ...", flush=True)
    records, samples, call_secs = _real_call_log()
    logging.getLogger().handlers.clear()
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
    metrics = Metrics()
    assert metrics.multiproc_dir, "prometheus-client must be in multiprocess mode"
    hook = MetricsHook(metrics)
    us: dict[str, float] = {}

    # Metrics at call start and end (the hooks), and the gauges app.py moves per stream.
    stats = TransportStats()
    stats.audio_in_ms = stats.audio_out_ms = 60_000
    call = SimpleNamespace(info=SimpleNamespace(provider="twilio"), outcome="caller_hung_up",
                           transport=SimpleNamespace(stats=stats))  # fmt: skip
    us["hook call_started"] = _cpu_us(lambda: hook.call_started(call))  # type: ignore[arg-type]
    us["hook call_ended (no lead samples)"] = _cpu_us(lambda: hook.call_ended(call))  # type: ignore[arg-type]

    def gauges() -> None:
        metrics.pending_started("127.0.0.1")
        metrics.pending_ended("127.0.0.1")
        metrics.active += 1
        metrics.active -= 1

    us["gauges per stream (pending, active)"] = _cpu_us(gauges)

    # The send-lead sample: the watchdog's once a second while the bot speaks, and its
    # observation into the histogram at call end.
    pacer = Pacer(8000, 0.06)
    pacer._t0, pacer._sent = time.monotonic(), 8000  # mid-utterance: 1 s sent
    transport = SimpleNamespace(_output=SimpleNamespace(pacer=pacer, bot_speaking=True), stats=TransportStats())
    now = time.monotonic()

    def sample() -> None:
        FastAPIWebsocketTransport._sample_lead(transport, now)  # type: ignore[arg-type]
        transport.stats.send_lead_samples.clear()

    us["send-lead sample (watchdog)"] = _cpu_us(sample)
    us["send-lead histogram observation"] = _cpu_us(lambda: metrics._lead.observe(0.06))

    # Per answered turn (agents): seven stage observations and the stage-breakdown line.
    stages = dict.fromkeys(("vad_stop", "transcript", "turn_end", "llm_first_token", "tts_first_byte",
                            "first_audio_sent", "first_audio_heard"), 0.3)  # fmt: skip
    us["hook turn_completed"] = _cpu_us(lambda: hook.turn_completed(call, SimpleNamespace(stages=stages)))  # type: ignore[arg-type]

    # The real call's log lines, re-logged through the JSON formatter to a stream handler, in
    # a call's context; minus the same calls with the level at ERROR (what "off" still pays).
    sink = open(os.devnull, "w")
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    lines = [(logging.getLogger(r.name), r.levelno, r.msg, r.args) for r in records]
    token = CALL_CONTEXT.set({"call_id": "CA" + "0" * 32, "provider": "twilio", "stream_id": "MZ" + "0" * 32})

    def log_call_lines() -> None:
        for logger, level, msg, args in lines:
            logger.log(level, msg, *(args or ()))

    loggers = {lg for lg, *_ in lines}
    for lg in loggers:
        lg.propagate = lg.name not in ("uvicorn", "uvicorn.access")
        if not lg.propagate:
            lg.handlers = [handler]
    root.setLevel(logging.INFO)
    for lg in loggers:
        lg.setLevel(logging.INFO)
    on = _cpu_us(log_call_lines, 200)
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    off = _cpu_us(log_call_lines, 200)
    us["JSON log lines of a call"] = on - off
    turn_line = ("= turn %d: vad_stop %d, transcript %d, turn_end %d, llm_first_token %d, tts_first_byte %d, "
                 "first_audio_sent %d, first_audio_heard %d ms")  # fmt: skip
    turn_logger = logging.getLogger("phonewire.transport")
    turn_logger.setLevel(logging.INFO)
    us["turn log line"] = _cpu_us(lambda: turn_logger.info(turn_line, 2, 200, 410, 450, 700, 820, 830, 890))
    CALL_CONTEXT.reset(token)
    root.handlers.clear()
    sink.close()

    # The scrape: render every worker's files (here this process's), shared by the process's calls.
    for i in range(calls):  # a process that has served `calls` calls, some ended with errors
        hook.call_ended(SimpleNamespace(info=call.info, outcome=("completed", "caller_hung_up")[i % 2],  # type: ignore[arg-type]
                                        transport=call.transport))  # fmt: skip
    us["/metrics scrape (render + tallies)"] = _cpu_us(lambda: (metrics.sync_process_tallies(), metrics.render()), 50)

    print(f"the echo server's own CPU with observability off ({calls} calls, 15 s) ...", flush=True)
    cpu_pct, call_cpu_s = _echo_cpu_per_call_minute(calls)

    per_second_lead = samples / call_secs if call_secs else 1.0
    fixed = sum(us[k] for k in ("hook call_started", "hook call_ended (no lead samples)",
                                "gauges per stream (pending, active)", "JSON log lines of a call"))  # fmt: skip
    lead = us["send-lead sample (watchdog)"] + us["send-lead histogram observation"]
    per_minute = 60 * min(1.0, per_second_lead) * lead  # the bot speaking all the time: the most
    scrape = us["/metrics scrape (render + tallies)"] * (60 / SCRAPE_SECS) / calls
    turns = TURNS_PER_MINUTE * (us["hook turn_completed"] + us["turn log line"])
    rows = {}
    for minutes in (0.5, 1.0, 3.0):
        echo = fixed / minutes + per_minute + scrape
        rows[f"{minutes:g} min call"] = {
            "observability_us_per_call_minute": round(echo, 1),
            "pct_of_call_cpu": round(100 * echo / (call_cpu_s * 1e6), 3),
            "with_agent_turns_pct": round(100 * (echo + turns) / (call_cpu_s * 1e6), 3),
        }
    summary = {
        "cpu_us": {k: round(v, 2) for k, v in us.items()},
        "real_call": {
            "secs": round(call_secs, 2),
            "send_lead_samples": samples,
            "log_lines": [f"{r.name}: {r.getMessage()[:70]}" for r in records],
        },  # fmt: skip
        "echo_server": {"calls": calls, "cpu_pct": cpu_pct, "cpu_us_per_call_minute": round(call_cpu_s * 1e6)},
        "per_call_us": {
            "fixed (start, end, logs, gauges)": round(fixed, 1),
            "per minute (lead samples)": round(per_minute, 1),
            "scrape share per minute": round(scrape, 2),
            f"agent turns per minute ({TURNS_PER_MINUTE})": round(turns, 1),
        },  # fmt: skip
        "ratio": rows,
        "took_s": round(time.monotonic() - started, 1),
        "machine": machine_info(),
    }
    out = CACHE / "results" / f"observability-per-call-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2), f"-> {out}", sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
