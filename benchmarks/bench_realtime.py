"""Speech-to-speech load: per-call CPU and memory of OpenAIRealtimeLLMService calls, the
latency from the fake's first audio delta to the caller's first packet, and first-turn latency
with and without a prewarmed session.

Three processes: the phonewire server (``create_app`` + the realtime bot, μ-law wire mode,
pinned to CPU 0 when there are two), FakeRealtimeServer (its own process: no GIL shared with
the callers) and this one (lean Twilio callers); the fake and the callers are pinned to CPU 1.
Each caller streams 20 ms μ-law packets in real time: 2 s of speech-like tone every 8 s (the
fake's server VAD answers each with a 1.4 s reply, streamed 4x faster than real time),
silence otherwise; marks are echoed when their audio has played on a simulated handset.
Sessions are matched to callers by the call sid (passed as the instructions).
``CLOCK_MONOTONIC`` is shared by all processes, so the fake's delta times and the callers'
arrival times compare directly. ``--trace DIR`` splits each latency at the server's stamps
and adds every process's GC pauses, loop lag and run-queue wait (docs/benchmarks.md).

    python benchmarks/bench_realtime.py            # 50/100/200 calls, ~3 minutes
    python benchmarks/bench_realtime.py --levels 20 --window 10
    python benchmarks/bench_realtime.py --levels 100 --no-first-turn --trace .bench-cache/rt
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "realtime.json"
PACKET = 0.02
SILENCE = base64.b64encode(b"\xff" * 160).decode()
REPLY = "Sure, I can help with that."


def _tone() -> str:
    import numpy as np

    from phonewire.audio.g711 import pcm_to_ulaw

    t = np.arange(160) / 8000
    return base64.b64encode(pcm_to_ulaw((np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2").tobytes())).decode()


# --- the server process ----------------------------------------------------------------


class Trace:
    """``--trace``: what a process's own stalls were (benchmark only). Garbage collections
    (``gc.callbacks``: generation, start, pause), event-loop lag (a 5 ms ticker's lateness, with
    when it happened) and named stamps (``mark``), all on ``time.monotonic`` (CLOCK_MONOTONIC,
    system-wide on Linux, so stamps of the server, the fake and the callers compare)."""

    def __init__(self) -> None:
        self.gc: list[tuple[int, float, float, float]] = []  # generation, start, pause, thread CPU
        self.lag: dict[str, list[tuple[float, float, float]]] = {}
        self.marks: list[tuple[str, str, float]] = []
        self._gc_start = self._gc_cpu = 0.0

    def install_gc(self) -> None:
        import gc

        def callback(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                self._gc_start, self._gc_cpu = time.monotonic(), time.thread_time()
            else:  # the pause, and how much of it the collector ran (the rest: no CPU)
                now, cpu = time.monotonic(), time.thread_time()
                self.gc.append((int(info["generation"]), self._gc_start, now - self._gc_start, cpu - self._gc_cpu))

        gc.callbacks.append(callback)

    async def watch_loop(self, name: str, tick: float = 0.005) -> None:
        lags = self.lag.setdefault(name, [])
        while True:
            before, cpu = time.monotonic(), time.thread_time()
            await asyncio.sleep(tick)
            late = time.monotonic() - before - tick
            if late > 0.002:  # and how much of it this thread ran (the rest: it waited for a CPU)
                lags.append((before, late, time.thread_time() - cpu))

    def mark(self, key: str, kind: str) -> None:
        self.marks.append((key, kind, time.monotonic()))

    def dump(self) -> dict[str, Any]:
        import gc
        from collections import Counter

        kinds = Counter(type(o).__name__ for o in gc.get_objects())
        return {"gc": self.gc, "lag": self.lag, "marks": self.marks, "tracked": sum(kinds.values()),
                "frozen": gc.get_freeze_count(), "top": kinds.most_common(12),
                "threshold": gc.get_threshold()}  # fmt: skip


TRACE: Trace | None = None


def _instrument_server(trace: Trace) -> None:
    """Stamp, per call (the call sid), when the service got a response's first audio delta and
    when the output sent that reply's first packet (``_bot_started`` runs right before it)."""
    from phonewire.services.openai.realtime import handlers
    from phonewire.transports.output import FastAPIWebsocketOutputTransport

    delta = handlers._HANDLERS["response.output_audio.delta"]

    async def on_delta(s: Any, e: Any) -> Any:
        reply = s._reply
        if reply is not None and not reply.audio_started and reply.response_id == e.str_field("response_id"):
            trace.mark(getattr(s, "bench_sid", "?"), "server_delta")
        return await delta(s, e)

    handlers._HANDLERS["response.output_audio.delta"] = on_delta
    started = FastAPIWebsocketOutputTransport._bot_started

    async def bot_started(self: Any) -> None:
        if not self.bot_speaking:
            trace.mark(getattr(self, "bench_sid", "?"), "server_send")
        await started(self)

    FastAPIWebsocketOutputTransport._bot_started = bot_started


def serve(port: int, fake_url: str, prewarm: bool, trace_path: str | None = None) -> None:
    import uvicorn

    from phonewire.frames import LLMRunFrame
    from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
    from phonewire.server import ServerConfig, create_app
    from phonewire.server.prewarm import prewarmed
    from phonewire.services.openai.realtime import OpenAIRealtimeLLMService, RealtimeSessionConfig, open_realtime

    trace = Trace() if trace_path else None
    if trace is not None:
        trace.install_gc()
        _instrument_server(trace)
    watching: list[asyncio.Task[None]] = []

    async def bot(transport: Any, info: Any) -> None:
        if trace is not None and not watching:
            loop = asyncio.get_running_loop()
            watching.append(loop.create_task(trace.watch_loop("server")))
            # the harness asks for the trace with SIGUSR1 (uvicorn re-raises SIGTERM: no atexit)
            loop.add_signal_handler(signal.SIGUSR1, lambda: Path(trace_path or "").write_text(json.dumps(trace.dump())))
        transport.input().use_wire_audio()
        # the call sid as the instructions: the fake's session says which call it serves
        llm = OpenAIRealtimeLLMService(api_key="k", base_url=fake_url, audio_format="pcmu", connection=prewarmed(),
                                       instructions=info.call_id)  # fmt: skip
        llm.bench_sid = transport.output().bench_sid = info.call_id
        task = PipelineTask(Pipeline([transport.input(), llm, transport.output()]))
        await task.queue_frame(LLMRunFrame())
        await PipelineRunner(handle_sigint=False, handle_sigterm=False).run(task)

    async def warm(call: Any) -> Any:
        return await open_realtime(RealtimeSessionConfig(), api_key="k", base_url=fake_url)

    config = ServerConfig(vad=None, stream_secret=None, max_calls=1000, twilio_auth_token="bench-token",
                          prewarm=warm if prewarm else None, stream_scheme="ws")  # fmt: skip
    uvicorn.run(create_app(bot, config), host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio",
                ws_per_message_deflate=False, loop="asyncio")  # fmt: skip


def _start_server(port: int, fake_url: str, prewarm: bool, trace_path: str | None = None,
                  server_gc: str | None = None) -> subprocess.Popen[bytes]:  # fmt: skip
    cmd = [sys.executable, __file__, "--serve", str(port), "--fake-url", fake_url]
    if prewarm:
        cmd.append("--prewarm")
    if trace_path:
        cmd += ["--trace-file", trace_path]
    env = dict(os.environ)
    if server_gc:  # create_app's gc tuning at start-up (server/app.py: "python" or gen0,gen1,gen2)
        env["PHONEWIRE_GC_THRESHOLDS"] = server_gc
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    if os.cpu_count() and os.cpu_count() >= 2:  # type: ignore[operator]
        psutil.Process(proc.pid).cpu_affinity([0])
        psutil.Process().cpu_affinity([1])
    deadline = time.monotonic() + 30
    import socket

    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    raise RuntimeError("server did not start")


# --- the fake's process ---------------------------------------------------------------


def fake_process(out: str) -> None:
    """FakeRealtimeServer in a process of its own: no GIL shared with the callers. Prints its
    base URL; on SIGUSR1 writes what the harness needs (per session: the call sid, the first
    delta of each response); SIGTERM ends it. Its garbage collector is off: the fake records
    every event of every session (hundreds of thousands of dicts in a run), and a full
    collection over them stalled its loop for 100-160 ms, after it had stamped a delta."""
    import gc

    from phonewire.testing.fakes import FakeRealtimeServer

    gc.disable()
    fake = FakeRealtimeServer(default_reply=REPLY, require_auth=False)
    fake.start()
    trace = Trace()
    if fake._loop is not None:
        asyncio.run_coroutine_threadsafe(trace.watch_loop("fake"), fake._loop)

    def dump(*_: Any) -> None:
        sessions = [{"sid": _session_sid(s), "connected_at": s.connected_at, "first_delta_at": s.first_delta_at}
                    for s in fake.sessions]  # fmt: skip
        Path(out + ".tmp").write_text(json.dumps({"sessions": sessions, "trace": trace.dump()}))
        os.replace(out + ".tmp", out)

    signal.signal(signal.SIGUSR1, dump)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(fake.base_url, flush=True)
    while True:
        signal.pause()


def _start_fake(out: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, __file__, "--fake", str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        raise RuntimeError("the fake did not start")
    return proc, url


async def _fake_records(proc: subprocess.Popen[str], out: Path) -> dict[str, Any]:
    out.unlink(missing_ok=True)  # noqa: ASYNC240
    proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 20
    while not out.exists() and time.monotonic() < deadline:  # noqa: ASYNC110, ASYNC240
        await asyncio.sleep(0.05)
    return dict(json.loads(out.read_text()))  # noqa: ASYNC240


# --- one caller ------------------------------------------------------------------------


class Caller:
    """A lean Twilio leg: real-time packets out, a handset playout for marks, arrival times."""

    def __init__(self, url: str, call_sid: str, tone: str, offset: float) -> None:
        self.url, self.call_sid, self.tone, self.offset = url, call_sid, tone, offset
        self.arrivals: list[float] = []
        self.started_at = 0.0
        self.first_audio_at: float | None = None
        self.busy_until = 0.0
        self.stop = False

    async def run(self, duration: float) -> None:
        sid = "MZ" + uuid.uuid4().hex
        async with connect(self.url, max_size=1 << 20, compression=None) as ws:
            fmt = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
            body = {"streamSid": sid, "callSid": self.call_sid, "accountSid": "AC" + "0" * 32, "tracks": ["inbound"],
                    "mediaFormat": fmt, "customParameters": {}}  # fmt: skip
            start = {"event": "start", "sequenceNumber": "1", "streamSid": sid, "start": body}
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            self.started_at = time.monotonic()
            await ws.send(json.dumps(start))
            reader = asyncio.get_running_loop().create_task(self._read(ws, sid))
            t0 = time.monotonic()
            k = 0
            prefix = '{"event":"media","streamSid":"' + sid + '","media":{"track":"inbound","payload":"'
            while time.monotonic() - t0 < duration:
                phase = (k * PACKET + self.offset) % 8.0
                payload = self.tone if 1.0 <= phase < 3.0 else SILENCE
                await ws.send(prefix + payload + '"}}')
                k += 1
                await asyncio.sleep(max(0.0, t0 + k * PACKET - time.monotonic()))
            await ws.send(json.dumps({"event": "stop", "streamSid": sid, "stop": {"callSid": self.call_sid}}))
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _read(self, ws: Any, sid: str) -> None:
        marks: list[tuple[float, str]] = []
        async for raw in ws:
            now = time.monotonic()
            msg = json.loads(raw)
            event = msg.get("event")
            if event == "media":
                self.arrivals.append(now)
                if self.first_audio_at is None:
                    self.first_audio_at = now
                self.busy_until = max(self.busy_until, now) + len(msg["media"]["payload"]) * 3 / 4 / 8000
            elif event == "mark":
                marks.append((max(self.busy_until, now), msg["mark"]["name"]))
            elif event == "clear":
                self.busy_until = now
                for _, name in marks:
                    await ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": name}}))
                marks.clear()
            while marks and marks[0][0] <= now:
                _, name = marks.pop(0)
                await ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": name}}))


# --- levels ----------------------------------------------------------------------------


def _end(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM (the server drains its calls first), then SIGKILL if it is still up after 20 s."""
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, math.ceil(q * len(values)) - 1)], 2)


def _run_delay(pid: int) -> float:
    """Seconds the process's threads have spent runnable but waiting for a CPU (Linux
    schedstat): on a shared machine, the part of the loop lag that is nobody's code."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, IndexError, ValueError):
                total += int((task / "schedstat").read_text().split()[1])
    except OSError:
        return 0.0
    return total / 1e9


def _session_sid(session: Any) -> str | None:
    value = session.state.session.get("instructions")
    return value if isinstance(value, str) and value else None


async def run_level(calls: int, window: float, ramp: float, trace_dir: Path | None = None,
                    server_gc: str | None = None) -> dict[str, Any]:  # fmt: skip

    import gc

    tone = _tone()
    trace = Trace() if trace_dir is not None else None
    work = trace_dir or Path(ROOT / ".bench-cache")
    work.mkdir(parents=True, exist_ok=True)
    tag = f"{calls}-{(server_gc or 'default').replace(',', '_')}"
    server_trace = trace_dir / f"server-{tag}.json" if trace_dir is not None else None
    fake_out = work / f"fake-{calls}-{os.getpid()}.json"
    watcher = None
    if trace is not None:
        trace.install_gc()
        watcher = asyncio.get_running_loop().create_task(trace.watch_loop("callers"))
    fake_proc, fake_url = _start_fake(fake_out)
    port = 20000 + calls
    try:
        proc = _start_server(port, fake_url, prewarm=False, trace_path=str(server_trace) if server_trace else None,
                             server_gc=server_gc)  # fmt: skip
    except BaseException:
        fake_proc.terminate()  # a server that did not start must not leave the fake behind
        fake_proc.wait(10)
        raise
    if os.cpu_count() and os.cpu_count() >= 2:  # type: ignore[operator]
        psutil.Process(fake_proc.pid).cpu_affinity([1])  # with the callers, away from the server
    # The callers stand in for the carrier and the phones: their collector's pauses (after a
    # packet arrived, before its time was read) are not the server's latency.
    gc.collect()
    gc.disable()
    try:
        server = psutil.Process(proc.pid)
        idle_rss = server.memory_info().rss
        callers = [
            Caller(f"ws://127.0.0.1:{port}/ws", f"CA{uuid.uuid4().hex}", tone, 8.0 * i / calls) for i in range(calls)
        ]
        duration = ramp + window + 2.0
        tasks = []
        for i, caller in enumerate(callers):
            tasks.append(asyncio.get_running_loop().create_task(caller.run(duration - i * ramp / calls)))
            await asyncio.sleep(ramp / calls)
        await asyncio.sleep(1.0)
        me, fake_ps = psutil.Process(), psutil.Process(fake_proc.pid)
        pids = {"server": proc.pid, "fake": fake_proc.pid, "callers": os.getpid()}
        wait0 = {k: _run_delay(v) for k, v in pids.items()}
        cpu0, mine0, fake0, t0 = server.cpu_times(), me.cpu_times(), fake_ps.cpu_times(), time.monotonic()
        await asyncio.sleep(window)
        cpu1, mine1, fake1, t1 = server.cpu_times(), me.cpu_times(), fake_ps.cpu_times(), time.monotonic()
        wait1 = {k: _run_delay(v) for k, v in pids.items()}
        rss = server.memory_info().rss
        await asyncio.gather(*tasks, return_exceptions=True)
        records = await _fake_records(fake_proc, fake_out)
        if watcher is not None:
            watcher.cancel()
        if server_trace is not None:
            server_trace.unlink(missing_ok=True)
            proc.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 10
            while not server_trace.exists() and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # written whole
    finally:
        gc.enable()
        for p in (proc, fake_proc):
            _end(p)
        fake_out.unlink(missing_ok=True)
    busy = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (t1 - t0)
    harness = (mine1.user + mine1.system - mine0.user - mine0.system) / (t1 - t0)
    fake_busy = (fake1.user + fake1.system - fake0.user - fake0.system) / (t1 - t0)
    latencies = []
    pairs: list[tuple[str, float, float]] = []  # (call sid, fake's first delta, caller's first packet)
    by_sid = {c.call_sid: c for c in callers}
    # each session names its call (the bot passes the call sid as the instructions)
    for session in records["sessions"]:
        match = by_sid.get(session["sid"] or "")
        if match is None:
            continue
        caller = match
        for delta_at in session["first_delta_at"]:
            after = [a for a in caller.arrivals if a >= delta_at]
            if after and after[0] - delta_at < 1.0 and t0 <= delta_at <= t1:
                latencies.append((after[0] - delta_at) * 1000)
                pairs.append((caller.call_sid, delta_at, after[0]))
    level = {
        "calls": calls,
        "server_gc": server_gc or "default",
        "server_cpu_percent_of_core": round(100 * busy, 1),
        "cpu_ms_per_call_second": round(1000 * busy / calls, 3),
        "rss_mb_per_call": round((rss - idle_rss) / calls / 2**20, 3),
        "delta_to_first_packet_ms": {
            "n": len(latencies),
            "p50": _pct(latencies, 0.5),
            "p95": _pct(latencies, 0.95),
            "max": _pct(latencies, 1.0),
        },  # fmt: skip
        "saturated": busy > 0.95,
        # the fake and the callers share one core (two processes): above ~90 % their own lag
        # is in the latency
        "harness_cpu_percent_of_core": round(100 * harness, 1),
        "fake_cpu_percent_of_core": round(100 * fake_busy, 1),
        # ms per second each process was runnable but not running (waiting for a CPU): the
        # machine's other load, which the latency includes and no process here can remove
        "runqueue_wait_ms_per_s": {k: round(1000 * (wait1[k] - wait0[k]) / (t1 - t0), 1) for k in pids},
    }
    if trace is not None and server_trace is not None and server_trace.exists():
        harness_trace = trace.dump()
        harness_trace["lag"]["fake"] = records["trace"]["lag"].get("fake", [])
        server_dump = json.loads(server_trace.read_text())
        level["trace"] = _stages(pairs, harness_trace, server_dump, t0, t1)
        level["trace"]["server_objects"] = {k: server_dump.get(k) for k in ("tracked", "frozen", "top", "threshold")}
    return level


def _stages(pairs: list[tuple[str, float, float]], harness: dict[str, Any], server: dict[str, Any],
            t0: float, t1: float) -> dict[str, Any]:  # fmt: skip
    """Split each latency at the server's stamps: fake -> server (the fake's send, the socket,
    the server's read), server (delta in -> first packet out), server -> caller (the socket, the
    callers' loop). Plus each process's GC pauses and loop lag inside the window."""
    marks: dict[tuple[str, str], list[float]] = {}
    for sid, kind, at in server["marks"]:
        marks.setdefault((sid, kind), []).append(at)
    stages: dict[str, list[float]] = {"fake_to_server": [], "in_server": [], "server_to_caller": [], "total": []}
    worst = []
    for sid, delta_at, heard in pairs:
        got = [a for a in marks.get((sid, "server_delta"), []) if a >= delta_at]
        sent = [a for a in marks.get((sid, "server_send"), []) if got and a >= got[0]]
        if not got or not sent or sent[0] > heard:
            continue
        row = {"fake_to_server": got[0] - delta_at, "in_server": sent[0] - got[0], "server_to_caller": heard - sent[0],
               "total": heard - delta_at}  # fmt: skip
        for k, v in row.items():
            stages[k].append(1000 * v)
        worst.append((row["total"], delta_at, row))
    worst.sort(key=lambda w: -w[0])

    def pauses(gcs: list[Any]) -> dict[str, Any]:
        inside = [(g, at, d, c) for g, at, d, *cpu in gcs if t0 <= at <= t1 for c in (cpu[0] if cpu else d,)]
        return {f"gen{g}": {"n": sum(1 for x in inside if x[0] == g),
                            "max_ms": round(1000 * max((d for x, _, d, _ in inside if x == g), default=0.0), 2),
                            "total_ms": round(1000 * sum(d for x, _, d, _ in inside if x == g), 1),
                            # the collector's own CPU time (thread_time); the rest of the pause
                            # the thread was descheduled (the machine's load)
                            "cpu_max_ms": round(1000 * max((c for x, _, _, c in inside if x == g), default=0.0), 2),
                            "cpu_total_ms": round(1000 * sum(c for x, _, _, c in inside if x == g), 1)}
                for g in (0, 1, 2)}  # fmt: skip

    def lags(values: list[Any]) -> dict[str, Any]:
        inside = [(d, c) for at, d, c in values if t0 <= at <= t1]
        late = sum(d for d, _ in inside)
        return {"n_over_2ms": len(inside), "p99_ms": _pct([1000 * d for d, _ in inside], 0.99),
                "max_ms": _pct([1000 * d for d, _ in inside], 1.0), "total_ms": round(1000 * late, 1),
                # of the lag, the share when the loop's thread was not running (waiting for a CPU)
                "not_running_share": round(1 - sum(min(c, d + 0.005) for d, c in inside)
                                           / sum(d + 0.005 for d, _ in inside), 2) if late else None}  # fmt: skip

    def near(gcs: list[Any], lagv: list[Any], start: float, end: float) -> dict[str, Any]:
        return {"gc": [(g, round(1000 * (at - start), 1), round(1000 * d, 1)) for g, at, d, *_ in gcs
                       if at + d >= start and at <= end and d > 0.002],
                "lag": [(round(1000 * (at - start), 1), round(1000 * d, 1), round(1000 * c, 1)) for at, d, c in lagv
                        if at + d >= start and at <= end]}  # fmt: skip

    return {
        "stages_ms": {k: {"p50": _pct(v, 0.5), "p95": _pct(v, 0.95), "max": _pct(v, 1.0)} for k, v in stages.items()},
        "gc": {"server": pauses(server["gc"]), "harness": pauses(harness["gc"])},
        "lag": {
            "server": lags(server["lag"].get("server", [])),
            "fake": lags(harness["lag"].get("fake", [])),
            "callers": lags(harness["lag"].get("callers", [])),
        },  # fmt: skip
        "worst": [
            {
                "total_ms": round(1000 * total, 1),
                **{k: round(1000 * v, 1) for k, v in row.items() if k != "total"},
                "server": near(server["gc"], server["lag"].get("server", []), at, at + total),
                "harness": near(
                    harness["gc"], harness["lag"].get("fake", []) + harness["lag"].get("callers", []), at, at + total
                ),
            }  # fmt: skip
            for total, at, row in worst[:5]
        ],
    }


async def churn(calls: int, secs: float, call_secs: float, server_gc: str | None) -> dict[str, Any]:
    """Memory under call turnover: ``calls`` callers each hang up after ``call_secs`` and call
    again, for ``secs``; the server's RSS sampled every 5 s. What an ended call leaves behind
    (cycles only a full collection frees) shows as RSS that keeps climbing."""
    import gc

    tone = _tone()
    work = Path(ROOT / ".bench-cache")
    work.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
    fake_out = work / f"fake-churn-{os.getpid()}.json"
    fake_proc, fake_url = _start_fake(fake_out)
    port = 22000 + calls
    try:
        proc = _start_server(port, fake_url, prewarm=False, server_gc=server_gc)
    except BaseException:
        fake_proc.terminate()
        fake_proc.wait(10)
        raise
    if os.cpu_count() and os.cpu_count() >= 2:  # type: ignore[operator]
        psutil.Process(fake_proc.pid).cpu_affinity([1])
    gc.collect()
    gc.disable()
    made = 0
    samples: list[tuple[float, float]] = []
    try:
        server = psutil.Process(proc.pid)
        idle = server.memory_info().rss
        end = time.monotonic() + secs

        async def line(i: int) -> None:
            nonlocal made
            await asyncio.sleep(call_secs * i / calls)  # staggered hang-ups
            while time.monotonic() + call_secs < end:
                made += 1
                caller = Caller(f"ws://127.0.0.1:{port}/ws", f"CA{uuid.uuid4().hex}", tone, 8.0 * i / calls)
                await caller.run(call_secs)

        lines = [asyncio.get_running_loop().create_task(line(i)) for i in range(calls)]
        t0 = time.monotonic()
        while time.monotonic() < end:
            await asyncio.sleep(5.0)
            samples.append((round(time.monotonic() - t0, 1), round((server.memory_info().rss - idle) / 2**20, 2)))
        await asyncio.gather(*lines, return_exceptions=True)
    finally:
        gc.enable()
        for p in (proc, fake_proc):
            _end(p)
        fake_out.unlink(missing_ok=True)
    warm = [mb for t, mb in samples if t >= 2 * call_secs]
    return {"mode": "churn", "server_gc": server_gc or "default", "calls": calls, "call_secs": call_secs,
            "secs": secs, "calls_made": made, "rss_mb_over_idle": samples,
            "rss_mb_per_call_warm": {"min": round(min(warm) / calls, 3), "max": round(max(warm) / calls, 3),
                                     "last": round(warm[-1] / calls, 3)} if warm else None}  # fmt: skip


async def first_turn(prewarm: bool, delay: float, n: int = 8) -> dict[str, Any]:
    """Stream start -> first greeting packet at the caller; with prewarm the webhook comes
    ``1 s`` before the stream (the phone rings) and the session is opened meanwhile."""
    import httpx

    from phonewire.telephony.signatures import twilio_signature
    from phonewire.testing.fakes import FakeRealtimeServer

    tone = _tone()
    values = []
    async with FakeRealtimeServer(default_reply=REPLY, require_auth=False, session_delay_s=delay) as fake:
        port = 21000 + int(prewarm)
        proc = _start_server(port, fake.base_url, prewarm=prewarm)
        try:
            async with httpx.AsyncClient() as http:
                for _ in range(n):
                    sid = "CA" + uuid.uuid4().hex
                    if prewarm:
                        url, form = (
                            f"http://127.0.0.1:{port}/webhooks/twilio",
                            {"CallSid": sid, "AccountSid": "AC" + "0" * 32},
                        )
                        headers = {"X-Twilio-Signature": twilio_signature(url, form, "bench-token")}
                        await http.post(url, data=form, headers=headers)
                        await asyncio.sleep(1.0)
                    caller = Caller(f"ws://127.0.0.1:{port}/ws", sid, tone, 4.0)
                    await caller.run(2.0)
                    if caller.first_audio_at is not None:
                        values.append((caller.first_audio_at - caller.started_at) * 1000)
        finally:
            _end(proc)
    return {"prewarm": prewarm, "session_delay_ms": delay * 1000, "n": len(values),
            "p50_ms": _pct(values, 0.5), "max_ms": _pct(values, 1.0)}  # fmt: skip


async def main(levels: list[int], window: float, ramp: float, trace_dir: Path | None = None,
               first_turns: bool = True, server_gc: list[str] | None = None,
               repeat: int = 1, churn_secs: float = 0.0, churn_calls: int = 100,
               churn_call_secs: float = 15.0) -> dict[str, Any]:  # fmt: skip
    results: dict[str, Any] = {"levels": [], "first_turn": []}
    settings_list: list[str | None] = list(server_gc) if server_gc else [None]
    for _ in range(repeat):  # settings interleaved, so the machine's load falls on each alike
        for calls in levels:
            for gc_setting in settings_list:
                level = await run_level(calls, window, ramp, trace_dir, gc_setting)
                print(json.dumps(level), file=sys.stderr)
                results["levels"].append(level)
    for seconds in [churn_secs] if churn_secs else []:
        for gc_setting in settings_list:
            row = await churn(churn_calls, seconds, churn_call_secs, gc_setting)
            print(json.dumps(row), file=sys.stderr)
            results.setdefault("churn", []).append(row)
    for delay in (0.0, 0.3) if first_turns else ():
        for prewarm in (False, True):
            turn = await first_turn(prewarm, delay)
            print(json.dumps(turn), file=sys.stderr)
            results["first_turn"].append(turn)
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int)
    parser.add_argument("--fake-url")
    parser.add_argument("--prewarm", action="store_true")
    parser.add_argument("--levels", type=int, nargs="*", default=[50, 100, 200])
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--ramp", type=float, default=8.0)
    parser.add_argument("--json", default=str(RESULTS))
    parser.add_argument("--trace", metavar="DIR", help="per-stage stamps, GC pauses and loop lag of every process")
    parser.add_argument("--trace-file", help=argparse.SUPPRESS)  # the server's, set by the harness
    parser.add_argument("--no-first-turn", action="store_true")
    parser.add_argument("--server-gc", nargs="*", metavar="SETTING",
                        help="the server's PHONEWIRE_GC_THRESHOLDS per level, each in turn (e.g. python 10000,10,10; "
                             "default: create_app's default)")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1, help="run the levels (and settings) this many times")
    parser.add_argument(
        "--churn",
        type=float,
        default=0.0,
        metavar="SECS",
        help="then, per --server-gc setting, SECS of call turnover: RSS as calls end and start",
    )
    parser.add_argument("--churn-calls", type=int, default=100)
    parser.add_argument("--churn-call-secs", type=float, default=15.0)
    parser.add_argument("--fake", help=argparse.SUPPRESS)  # run the fake (the harness starts it)
    args = parser.parse_args()
    if args.fake:
        fake_process(args.fake)
    elif args.serve:
        serve(args.serve, args.fake_url, args.prewarm, args.trace_file)
    else:
        trace_dir = Path(args.trace) if args.trace else None
        if trace_dir is not None:
            trace_dir.mkdir(parents=True, exist_ok=True)
        out = asyncio.run(main(args.levels, args.window, args.ramp, trace_dir, not args.no_first_turn, args.server_gc,
                               args.repeat, args.churn, args.churn_calls, args.churn_call_secs))  # fmt: skip
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
