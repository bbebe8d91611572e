"""``phonewire serve`` in a subprocess, for the multi-worker metrics and SIGTERM drain tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

#: A bot module for ``--bot bots_for_serve:bot``: echoes the caller, and speaks a
#: ``TTSSpeakFrame`` as a 440 Hz tone (a stand-in TTS, so a drain's goodbye is audible).
BOT = """
from phonewire import Pipeline, PipelineRunner, PipelineTask
from phonewire.audio.analysis import tone
from phonewire.frames import OutputAudioRawFrame, TTSSpeakFrame
from phonewire.processors import EchoProcessor, FrameProcessor


class ToneTTS(FrameProcessor):
    async def process_frame(self, frame, direction):
        if isinstance(frame, TTSSpeakFrame):
            await self.push_frame(OutputAudioRawFrame(audio=tone(440, 0.8, 8000), sample_rate=8000, num_channels=1))
            return
        await self.push_frame(frame, direction)


async def bot(transport, call):
    task = PipelineTask(Pipeline([transport.input(), EchoProcessor(), ToneTTS(), transport.output()]))
    await PipelineRunner(handle_sigint=False).run(task)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(
    tmp: Path, *extra: str, workers: int = 2, bot: str = BOT
) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    """Yield (base URL, process) once /livez answers; the process is ended (SIGKILL) on exit."""
    (tmp / "bots_for_serve.py").write_text(bot)
    port = free_port()
    cmd = [sys.executable, "-m", "phonewire", "serve", "--port", str(port), "--workers", str(workers)]
    cmd += ["--vad", "none", "--bot", "bots_for_serve:bot", *extra]
    env = {**os.environ, "PYTHONPATH": str(tmp)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = (tmp / "server.log").open("wb")
    proc = await asyncio.to_thread(subprocess.Popen, cmd, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_live(base, proc)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        await asyncio.to_thread(proc.wait, 10)
        log.close()


async def _wait_live(base: str, proc: subprocess.Popen[bytes]) -> None:
    """Poll /livez (the process has no readiness signal we could wait on), bounded."""
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"phonewire serve exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{base}/livez", timeout=1)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError("phonewire serve did not come up in 60 s")


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample of metric ``name`` in a Prometheus text exposition."""
    found = []
    for match in re.finditer(rf"^{re.escape(name)}(?:\{{(.*?)\}})? (\S+)$", text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        found.append((labels, float(match.group(2))))
    return found


async def poll_metrics(base: str, until: object, timeout: float = 20.0) -> str:
    """Scrape until ``until(text)`` holds (a metric is what we wait on here), bounded."""
    deadline = time.monotonic() + timeout
    text = ""
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                text = (await http.get(f"{base}/metrics", timeout=2)).text
                if until(text):  # type: ignore[operator]
                    return text
            await asyncio.sleep(0.05)
    raise AssertionError("metrics never reached the expected state; last scrape:\n" + text)
