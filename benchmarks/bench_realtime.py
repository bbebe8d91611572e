"""Speech-to-speech load: per-call CPU and memory of OpenAIRealtimeLLMService calls, the
latency from the fake's first audio delta to the caller's first packet, and first-turn latency
with and without a prewarmed session.

Two processes: the phonewire server (``create_app`` + the realtime bot, μ-law wire mode,
pinned to CPU 0 when there are two) and this one (FakeRealtimeServer on its own thread, and
lean Twilio callers, pinned to CPU 1). Each caller streams 20 ms μ-law packets in real time:
2 s of speech-like tone every 8 s (the fake's server VAD answers each with a 1.4 s reply,
streamed 4x faster than real time), silence otherwise; marks are echoed when their audio has
played on a simulated handset. ``CLOCK_MONOTONIC`` is shared by both processes, so the fake's
delta times and the callers' arrival times compare directly.

    python benchmarks/bench_realtime.py            # 50/100/200 calls, ~3 minutes
    python benchmarks/bench_realtime.py --levels 20 --window 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
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


def serve(port: int, fake_url: str, prewarm: bool) -> None:
    import uvicorn

    from phonewire.frames import LLMRunFrame
    from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
    from phonewire.server import ServerConfig, create_app
    from phonewire.server.prewarm import prewarmed
    from phonewire.services.openai.realtime import OpenAIRealtimeLLMService, RealtimeSessionConfig, open_realtime

    async def bot(transport: Any, info: Any) -> None:
        transport.input().use_wire_audio()
        llm = OpenAIRealtimeLLMService(api_key="k", base_url=fake_url, audio_format="pcmu", connection=prewarmed())
        task = PipelineTask(Pipeline([transport.input(), llm, transport.output()]))
        await task.queue_frame(LLMRunFrame())
        await PipelineRunner(handle_sigint=False, handle_sigterm=False).run(task)

    async def warm(call: Any) -> Any:
        return await open_realtime(RealtimeSessionConfig(), api_key="k", base_url=fake_url)

    config = ServerConfig(vad=None, stream_secret=None, max_calls=1000, twilio_auth_token="bench-token",
                          prewarm=warm if prewarm else None, stream_scheme="ws")  # fmt: skip
    uvicorn.run(create_app(bot, config), host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio",
                ws_per_message_deflate=False, loop="asyncio")  # fmt: skip


def _start_server(port: int, fake_url: str, prewarm: bool) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, __file__, "--serve", str(port), "--fake-url", fake_url]
    if prewarm:
        cmd.append("--prewarm")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, math.ceil(q * len(values)) - 1)], 2)


async def run_level(calls: int, window: float, ramp: float) -> dict[str, Any]:
    from phonewire.testing.fakes import FakeRealtimeServer

    tone = _tone()
    async with FakeRealtimeServer(default_reply=REPLY, require_auth=False) as fake:
        port = 20000 + calls
        proc = _start_server(port, fake.base_url, prewarm=False)
        try:
            server = psutil.Process(proc.pid)
            idle_rss = server.memory_info().rss
            callers = [
                Caller(f"ws://127.0.0.1:{port}/ws", f"CA{uuid.uuid4().hex}", tone, 8.0 * i / calls)
                for i in range(calls)
            ]
            duration = ramp + window + 2.0
            tasks = []
            for i, caller in enumerate(callers):
                tasks.append(asyncio.get_running_loop().create_task(caller.run(duration - i * ramp / calls)))
                await asyncio.sleep(ramp / calls)
            await asyncio.sleep(1.0)
            me = psutil.Process()
            cpu0, mine0, t0 = server.cpu_times(), me.cpu_times(), time.monotonic()
            await asyncio.sleep(window)
            cpu1, mine1, t1 = server.cpu_times(), me.cpu_times(), time.monotonic()
            rss = server.memory_info().rss
            await asyncio.gather(*tasks, return_exceptions=True)
            sessions = fake.sessions
        finally:
            proc.terminate()
            proc.wait(10)
    busy = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (t1 - t0)
    harness = (mine1.user + mine1.system - mine0.user - mine0.system) / (t1 - t0)
    latencies = []
    by_call = {i: c for i, c in enumerate(callers)}
    # sessions are opened in call order: match each session's first deltas with its caller's arrivals
    for index, session in enumerate(sorted(sessions, key=lambda s: s.connected_at)):
        caller = by_call.get(index)
        if caller is None:
            continue
        for delta_at in session.first_delta_at:
            after = [a for a in caller.arrivals if a >= delta_at]
            if after and after[0] - delta_at < 1.0 and t0 <= delta_at <= t1:
                latencies.append((after[0] - delta_at) * 1000)
    return {
        "calls": calls,
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
        # the fake and the callers share one core: above ~90 % their own lag is in the latency
        "harness_cpu_percent_of_core": round(100 * harness, 1),
    }


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
            proc.terminate()
            proc.wait(10)
    return {"prewarm": prewarm, "session_delay_ms": delay * 1000, "n": len(values),
            "p50_ms": _pct(values, 0.5), "max_ms": _pct(values, 1.0)}  # fmt: skip


async def main(levels: list[int], window: float, ramp: float) -> dict[str, Any]:
    results: dict[str, Any] = {"levels": [], "first_turn": []}
    for calls in levels:
        level = await run_level(calls, window, ramp)
        print(json.dumps(level), file=sys.stderr)
        results["levels"].append(level)
    for delay in (0.0, 0.3):
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
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.fake_url, args.prewarm)
    else:
        out = asyncio.run(main(args.levels, args.window, args.ramp))
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
