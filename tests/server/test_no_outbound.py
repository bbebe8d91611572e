"""Issue 11 finding 9: ``phonewire serve`` makes no outbound connection nobody configured.

The review saw onnxruntime try a telemetry host when the Silero model loaded. This test runs
the real ``phonewire serve`` (Silero VAD on) in a subprocess and places a call with the
simulator, under two recorders of outbound attempts:

* every proxy variable (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, lower case too)
  points at a local proxy that records each request it gets - HTTP clients, Python's and
  native ones, send their traffic there;
* a ``sitecustomize`` audit hook (``sys.addaudithook``) in the server writes every
  ``socket.connect``, ``socket.sendto`` and ``socket.getaddrinfo`` to a file, and the value
  of ``ORT_DISABLE_TELEMETRY`` at the moment onnxruntime is imported.

The test machine has no internet, so attempts are recorded, not completed: the assertion is
on attempts. What it cannot see is a native library that opens a socket itself ignoring the
proxy variables (the audit hook sees Python's sockets only); onnxruntime's telemetry is
covered by the variable being set before its import, which is asserted directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from phonewire.testing import HangUp, Say, WaitForBotReply, builtin_recording, simulate_call

SITECUSTOMIZE = r"""
import json, os, sys

_LOG = os.environ["PHONEWIRE_TEST_CONNECT_LOG"]

def _write(entry):
    with open(_LOG, "a") as f:
        f.write(json.dumps(entry, default=repr) + "\n")

def _hook(event, args):
    if event in ("socket.connect", "socket.sendto", "socket.bind"):
        _write({"event": event, "address": args[1]})
    elif event == "socket.getaddrinfo":
        _write({"event": event, "host": args[0]})
    elif event == "import" and args[0] == "onnxruntime":
        _write({"event": "import onnxruntime", "ORT_DISABLE_TELEMETRY": os.environ.get("ORT_DISABLE_TELEMETRY")})

sys.addaudithook(_hook)
"""

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", None, ""}


class RecordingProxy:
    """Accepts any connection, records its first line (``CONNECT host:443`` or ``GET http://…``)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                line = await reader.readline()
            self.requests.append(line.decode("latin-1").strip() or "<connection without a request>")
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            self.requests.append("<connection without a request>")
        finally:
            writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: Any) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def _server_port(stderr: asyncio.StreamReader, seen: list[str]) -> int:
    while True:
        line = (await stderr.readline()).decode(errors="replace")
        if not line:
            raise AssertionError("phonewire serve exited:\n" + "".join(seen))
        seen.append(line)
        match = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
        if match:
            return int(match.group(1))


async def _drain(stderr: asyncio.StreamReader, seen: list[str]) -> None:
    while line := await stderr.readline():
        seen.append(line.decode(errors="replace"))


def _server_env(tmp: Path, proxy: str, log: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY") and not k.startswith("PHONEWIRE_")}
    env.pop("ORT_DISABLE_TELEMETRY", None)  # phonewire must set it itself
    env.pop("NO_PROXY", None)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = proxy
    env["PYTHONPATH"] = os.pathsep.join([str(tmp), env.get("PYTHONPATH", "")])
    env["PHONEWIRE_TEST_CONNECT_LOG"] = str(log)
    env["PHONEWIRE_DEMO_MAX_CALL_SECS"] = "20"
    return env


def _remote(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    remote = []
    for e in entries:
        if e["event"] == "socket.getaddrinfo" and e["host"] not in LOCAL_HOSTS:
            remote.append(e)
        elif e["event"] in ("socket.connect", "socket.sendto"):
            address = e["address"]
            host = address[0] if isinstance(address, list | tuple) and address else address
            if isinstance(host, str) and host.startswith("/"):
                continue  # AF_UNIX: local by definition
            if host not in LOCAL_HOSTS:
                remote.append(e)
    return remote


def test_a_call_with_silero_vad_makes_no_outbound_connection(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "connects.jsonl"
    proxy = RecordingProxy()

    async def main() -> tuple[Any, list[str]]:
        async with proxy as proxy_url:
            cmd = [sys.executable, "-m", "phonewire", "serve", "--port", "0", "--vad", "silero", "--log-level", "info"]
            server = await asyncio.create_subprocess_exec(
                *cmd, env=_server_env(tmp_path, proxy_url, log), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
            )
            assert server.stderr is not None
            seen: list[str] = []
            try:
                async with asyncio.timeout(60):
                    port = await _server_port(server.stderr, seen)
                drain = asyncio.create_task(_drain(server.stderr, seen))
                report = await simulate_call(
                    f"ws://127.0.0.1:{port}/ws",
                    script=[Say.from_wav(builtin_recording("hello")), WaitForBotReply(timeout=8), HangUp()],
                    max_duration_s=30,
                )
            finally:
                server.send_signal(signal.SIGINT)
                async with asyncio.timeout(20):
                    await server.wait()
            await drain
            return report, seen

    report, seen = asyncio.run(main())
    logs = "".join(seen)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert report.audio_received_s > 0, report.render_text() + logs  # a real call, answered
    assert "call started" in logs and "call ended" in logs, logs
    imports = [e for e in entries if e["event"] == "import onnxruntime"]
    assert imports == [{"event": "import onnxruntime", "ORT_DISABLE_TELEMETRY": "1"}], logs  # Silero loaded
    assert any(e["event"] == "socket.bind" for e in entries)  # the socket recorder ran (uvicorn's bind)
    assert proxy.requests == []
    assert _remote(entries) == []


def test_an_operators_own_telemetry_setting_is_kept() -> None:
    code = (
        "import os; os.environ['ORT_DISABLE_TELEMETRY'] = '0'; "
        "import phonewire.audio.vad.silero; print(os.environ['ORT_DISABLE_TELEMETRY'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "0"
