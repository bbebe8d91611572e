"""Real headless Chromium (Debian's ``chromium``) against a real ``phonewire serve``.

Chromium is driven by playwright's Python package with ``executable_path=/usr/bin/chromium``
(no browser download); its fake media device plays a speech WAV made at test time from the
built-in caller recording. The tests skip, saying why, where Chromium or playwright is absent.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from phonewire.audio.wav import read_wav
from phonewire.testing.script import builtin_recording

CHROMIUM = os.environ.get("PHONEWIRE_CHROMIUM", "/usr/bin/chromium")
#: The flags that work on this kind of machine (closed network, root, no GPU), plus fake media.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
STARTUP_SECS = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def speech_wav(path: Path, lead_secs: float = 8.0, tail_secs: float = 60.0) -> Path:
    """The built-in "Hi, I would like to know my order status." as 48 kHz 16-bit mono, with
    silence around it: the lead lets the greeting play first, and the tail keeps Chromium's
    second loop of the file out of a test."""
    pcm, rate, _ = read_wav(builtin_recording("hello").read_bytes())
    speech = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    out_rate = 48000
    t = np.arange(int(len(speech) * out_rate / rate)) * rate / out_rate
    resampled = np.interp(t, np.arange(len(speech)), speech)
    audio = np.concatenate([np.zeros(int(lead_secs * out_rate)), resampled, np.zeros(int(tail_secs * out_rate))])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(out_rate)
        w.writeframes(np.clip(audio, -32768, 32767).astype("<i2").tobytes())
    return path


class Server:
    def __init__(self, base: str, proc: subprocess.Popen[bytes], log: Path, softphone_key: str, console_token: str):
        self.base, self.proc, self.log = base, proc, log
        self.softphone_key, self.console_token = softphone_key, console_token

    def api(self) -> dict[str, Any]:
        response = httpx.get(f"{self.base}/calls/api", auth=("ops", self.console_token), timeout=5)
        response.raise_for_status()
        return dict(response.json())


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download needed)")
    return CHROMIUM


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[Server]:
    """``phonewire serve`` running the conversing demo (Whisper, rules brain, Piper)."""
    pytest.importorskip("faster_whisper", reason='needs pip install "phonewire[local]"')
    tmp = tmp_path_factory.mktemp("serve")
    port = _free_port()
    softphone_key, console_token = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "PHONEWIRE_STREAM_SECRET": secrets.token_urlsafe(32),
        "PHONEWIRE_SOFTPHONE_TOKEN": softphone_key,
        "PHONEWIRE_CONSOLE_TOKEN": console_token,
        "PHONEWIRE_DEMO_BRAIN": "rules",
        "PHONEWIRE_DEMO_MAX_CALL_SECS": "90",
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    cmd = [sys.executable, "-m", "phonewire", "serve", "--bot", "phonewire.demo.conversation:conversation_bot"]
    cmd += ["--port", str(port), "--softphone", "--console", "--stream-scheme", "ws", "--log-level", "info"]
    log_path = tmp / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECS
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"phonewire serve exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"phonewire serve not up in {STARTUP_SECS}s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Server(base, proc, log_path, softphone_key, console_token)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def browser(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    wav = speech_wav(tmp_path_factory.mktemp("media") / "caller.wav")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={wav}"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Iterator[Any]:
    """save(page, name): a PNG under the test's tmp dir, and under $PHONEWIRE_SCREENSHOTS if set."""
    extra = os.environ.get("PHONEWIRE_SCREENSHOTS")

    def save(page: Any, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(extra) / path.name)
        return path

    yield save
