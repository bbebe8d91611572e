"""Runs load levels: a fresh server per level, pinned to one core, the generator on another.

One level = (system, VAD mode, N calls). For each: start the server (``taskset -c 0``, or
``sched_setaffinity`` where taskset is missing), wait for ``/healthz``, run the load generator
pinned to the next core, stop the server (SIGINT, then SIGKILL after 5 s), and judge the level
against the issue's "keeps up" rule.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
REPO = BENCH.parent
CACHE = REPO / ".bench-cache"

#: "keeps up" (the issue): echo p99 under 100 ms, not growing, all audio echoed, no underruns.
KEEP_UP_P99_MS = 100.0
#: Growth of the median echo latency from the first to the last 5 s of the window.
KEEP_UP_GROWTH_MS = 20.0
#: Lost audio allowed: a barge-in legitimately drops the packet in flight (VAD runs only).
KEEP_UP_LOST_PCT = 0.5
#: Audible gaps allowed per call and minute (0 = none at all).
KEEP_UP_UNDERRUNS_PER_CALL_MINUTE = 0.1

__all__ = ["Level", "judge", "run_level", "machine_info"]


@dataclass
class Level:
    #: "phonewire" (as shipped), "pipecat", "bare" (web stack only)
    system: str
    vad: str  # "none" | "silero" | "silero-nobatch" (phonewire only: vad_batching=False)
    calls: int
    warmup: float = 5.0
    measure: float = 20.0
    ramp: float | None = None
    probe: bool = True
    warmup_call: bool = True
    extra_server_args: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        probe = "" if self.probe else " (no probe)"
        return f"{self.system}{probe} vad={self.vad} N={self.calls}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpus() -> tuple[int | None, int | None]:
    """(server core, generator core), or None where pinning is impossible (one CPU)."""
    try:
        available = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS/Windows
        return None, None
    if len(available) < 2:
        return None, None
    return available[0], available[1]


def _pinned(cmd: list[str], cpu: int | None) -> list[str]:
    if cpu is None:
        return cmd
    taskset = shutil.which("taskset")
    if taskset:
        return [taskset, "-c", str(cpu), *cmd]
    return [*cmd, "--cpu", str(cpu)]


def _server_cmd(level: Level, port: int, pipecat_python: Path | None) -> list[str]:
    if level.system == "phonewire":
        cmd = [sys.executable, str(HERE / "server_phonewire.py")]
    elif level.system == "bare":
        cmd = [sys.executable, str(HERE / "server_bare.py")]
    elif level.system == "pipecat":
        if pipecat_python is None:
            raise RuntimeError("Pipecat's virtual environment is needed for Pipecat levels")
        cmd = [str(pipecat_python), str(BENCH / "pipecat" / "echo_bot.py")]
    else:
        raise ValueError(level.system)
    cmd += ["--port", str(port), "--vad", level.vad, *level.extra_server_args]
    if not level.probe:
        cmd.append("--no-probe")
    return cmd


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("server not ready in time")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def run_level(level: Level, *, pipecat_python: Path | None = None, log: Any = print) -> dict[str, Any]:
    """Run one level in fresh processes; returns the generator's result plus level and verdict."""
    server_cpu, client_cpu = cpus()
    logs = CACHE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any]
    server: subprocess.Popen[bytes] | None = None
    try:
        for attempt in range(3):  # a port picked free can be taken again before the server binds it
            port = _free_port()
            server_log = logs / f"{level.system}-{level.vad}-{level.calls}-{time.strftime('%H%M%S')}.log"
            with open(server_log, "wb") as err:
                server = subprocess.Popen(
                    _pinned(_server_cmd(level, port, pipecat_python), server_cpu),
                    stdout=err,
                    stderr=subprocess.STDOUT,
                    cwd=REPO,
                )
            try:
                _wait_healthy(port, server)
                break
            except RuntimeError:
                if attempt == 2:
                    raise RuntimeError(f"server did not start; see {server_log}") from None
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            cmd = [
                sys.executable,
                str(HERE / "client.py"),
                "--port", str(port),
                "--calls", str(level.calls),
                "--warmup", str(level.warmup),
                "--measure", str(level.measure),
                "--server-pid", str(server.pid),
                "--json", str(out),
            ]  # fmt: skip
            if level.ramp is not None:
                cmd += ["--ramp", str(level.ramp)]
            if not level.warmup_call:
                cmd.append("--no-warmup-call")
            budget = 60 + (level.ramp or level.calls / 100) + level.warmup + level.measure
            done = subprocess.run(_pinned(cmd, client_cpu), cwd=REPO, timeout=budget, capture_output=True)
            if done.returncode != 0 or not out.exists():
                tail = done.stderr.decode(errors="replace")[-2000:]
                raise RuntimeError(f"load generator failed ({done.returncode}):\n{tail}")
            result = json.loads(out.read_text())
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        if server is not None:
            _stop(server)
    result["level"] = {
        "system": level.system,
        "vad": level.vad,
        "calls": level.calls,
        "warmup": level.warmup,
        "measure": level.measure,
        "probe": level.probe,
        "pinned": {"server": server_cpu, "generator": client_cpu},
    }
    result["verdict"] = judge(result)
    return result


def judge(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's rule, with the reason when a level does not keep up."""
    if "error" in result:
        return {"keeps_up": False, "reasons": [result["error"][:200]]}
    reasons = []
    if result.get("failed"):
        reasons.append(f"{result['failed']} calls failed to connect")
    p99 = result.get("echo_ms", {}).get("p99")
    if p99 is None:
        reasons.append("no echo measured")
    elif p99 >= KEEP_UP_P99_MS:
        reasons.append(f"echo p99 {p99:.0f} ms")
    if result.get("echo_growth_ms", 0.0) > KEEP_UP_GROWTH_MS:
        reasons.append(f"echo latency grew {result['echo_growth_ms']:.0f} ms")
    if result.get("lost_pct", 0.0) > KEEP_UP_LOST_PCT:
        reasons.append(f"{result['lost_pct']:.1f}% of audio not echoed")
    if result.get("underruns_per_call_minute", 0.0) > KEEP_UP_UNDERRUNS_PER_CALL_MINUTE:
        reasons.append(f"{result['underruns_per_call_minute']:.2f} underruns per call-minute")
    client_cpu = result.get("client", {}).get("cpu_pct")
    trusted = client_cpu is None or client_cpu < 85
    if not trusted:
        reasons.append(f"load generator at {client_cpu:.0f}% CPU: numbers not trustworthy")
    return {"keeps_up": not reasons, "reasons": reasons}


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"python": sys.version.split()[0], "platform": sys.platform}
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        info["cpu_model"] = names[0] if names else None
    except OSError:
        info["cpu_model"] = None
    info["cpus"] = os.cpu_count()
    try:
        with open("/proc/meminfo") as f:
            info["mem_gb"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    info["kernel"] = os.uname().release if hasattr(os, "uname") else None
    versions = {}
    from importlib import metadata

    for name in ("phonewire", "uvicorn", "websockets", "uvloop", "httptools", "starlette", "fastapi", "onnxruntime"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info["versions"] = versions
    try:

        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

        dirty = git("status", "--porcelain", "src")
        info["git"] = git("rev-parse", "--short", "HEAD") + (" + uncommitted src/ changes" if dirty else "")
        # What the servers ran: the src/ tree and any uncommitted change to it.
        info["src_tree"] = git("rev-parse", "--short", "HEAD:src") + (
            f" + diff {hashlib.sha1(git('diff', 'src').encode()).hexdigest()[:8]}" if dirty else ""
        )
    except OSError:
        info["git"] = info["src_tree"] = None
    return info
