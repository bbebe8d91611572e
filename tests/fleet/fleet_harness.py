"""A fleet on loopback: redis-server, ``phonewire serve`` nodes and nginx, all subprocesses.

Why real processes: the fleet's promises are about separate machines - a token spent on one
node, a limit counted across nodes, a command crossing nodes, nginx proxying WebSocket
upgrades - so each node is its own ``phonewire serve``, Redis is a real ``redis-server`` and
the load balancer is Debian's nginx with a generated config. Everything binds 127.0.0.1 on
free ports under a temporary directory; every process is killed on exit. Start-up is waited
for by polling a port or an endpoint, bounded (the processes have no readiness signal).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))
from serve_subprocess import BOT

from support.signed_webhooks import ACCOUNT_SID, TWILIO_TOKEN, signed_answer

SECRET = "fleet-stream-secret-for-tests-0123456789"
API_TOKEN = "fleet-api-token-for-tests-0123456789"
REDIS = shutil.which("redis-server")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

needs_fleet_binaries = pytest.mark.skipif(
    REDIS is None or NGINX is None, reason="needs redis-server and nginx (apt-get install redis-server nginx)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing listening on {port} after {timeout}s")


@dataclass
class Node:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


@dataclass
class Fleet:
    tmp: Path
    redis_port: int
    nodes: list[Node]
    lb_port: int = 0
    lb: subprocess.Popen[bytes] | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.lb_port}/ws"

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.name == node_id)

    async def token(self, call_sid: str) -> str:
        """A stream token from a signed Twilio webhook, through nginx (any node answers)."""
        form = {"CallSid": call_sid, "AccountSid": ACCOUNT_SID, "From": "+15550001", "To": "+15550100"}
        async with httpx.AsyncClient() as http:
            answer = await signed_answer(http, self.base, "twilio", form)
        match = re.search(r'name="phonewireToken" value="([^"]+)"', answer.text)
        assert match, answer.text
        return match.group(1)

    async def api(self, node: Node, method: str, path: str, json: object = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        async with httpx.AsyncClient(base_url=node.base, timeout=10) as http:
            return await http.request(method, path, json=json, headers=headers)

    async def live_calls(self) -> list[dict[str, object]]:
        calls: list[dict[str, object]] = (await self.api(self.nodes[0], "GET", "/fleet/calls")).json()["calls"]
        return calls

    async def wait_calls(self, predicate: object, timeout: float = 15.0) -> list[dict[str, object]]:
        """Poll the registry until ``predicate(calls)`` holds (bounded)."""
        deadline = time.monotonic() + timeout
        calls: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            calls = await self.live_calls()
            if predicate(calls):  # type: ignore[operator]
                return calls
            await asyncio.sleep(0.05)
        raise AssertionError(f"registry never reached the expected state: {calls}")

    def write_lb_config(self, nodes: list[Node]) -> Path:
        tmp = self.tmp / "nginx"
        tmp.mkdir(exist_ok=True)
        servers = "\n".join(f"    server 127.0.0.1:{n.port};" for n in nodes)
        temps = "\n".join(f"  {k}_temp_path {tmp}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf = NGINX_CONF.format(tmp=tmp, servers=servers, temps=temps, port=self.lb_port)
        path = tmp / "nginx.conf"
        path.write_text(conf)
        return path

    async def route_to(self, nodes: list[Node]) -> None:
        """Regenerate nginx's upstream (what an LB following /readyz does) and reload it."""
        self.write_lb_config(nodes)
        assert self.lb is not None
        log = self.tmp / "nginx" / "error.log"
        before = log.read_text().count("reconfiguring")
        self.lb.send_signal(signal.SIGHUP)  # graceful: proxied calls stay on the old workers
        # nginx tells of a finished reload only in its log: poll it, bounded.
        deadline = time.monotonic() + 10
        while True:
            text = log.read_text()
            after = text.split("reconfiguring")[before + 1 :] if text.count("reconfiguring") > before else []
            if after and "start worker process" in after[-1]:
                return
            assert time.monotonic() < deadline, "nginx did not reload"
            await asyncio.sleep(0.05)

    async def ready(self, node: Node) -> bool:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(f"{node.base}/readyz")).status_code == 200


#: nginx as the WebSocket load balancer (docs/deployment.md shows the same).
NGINX_CONF = """
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log notice;
events {{ worker_connections 1024; }}
http {{
{temps}
  access_log off;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  upstream phonewire {{
{servers}
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://phonewire;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
    }}
  }}
}}
"""


def _spawn(
    cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    try:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    finally:
        out.close()  # the child holds its own copy


@contextlib.asynccontextmanager
async def running_fleet(
    tmp: Path, *, nodes: int = 3, extra: tuple[str, ...] = (), api_base: str | None = None
) -> AsyncIterator[Fleet]:
    """Redis, ``nodes`` phonewire nodes (node-1...) and nginx in front; all killed on exit."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        redis_port = free_port()
        assert REDIS is not None and NGINX is not None
        redis = _spawn([REDIS, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                        "--dir", str(tmp)], tmp / "redis.log")  # fmt: skip
        procs.append(redis)
        await wait_port(redis_port, redis)
        (tmp / "bots_for_serve.py").write_text(BOT)
        env = {**os.environ, "PYTHONPATH": str(tmp), "PHONEWIRE_STREAM_SECRET": SECRET,
               "TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "PHONEWIRE_FLEET_API_TOKEN": API_TOKEN}  # fmt: skip
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        started: list[Node] = []
        for i in range(1, nodes + 1):
            port = free_port()
            cmd = [sys.executable, "-m", "phonewire", "serve", "--port", str(port), "--vad", "none",
                   "--bot", "bots_for_serve:bot", "--redis-url", f"redis://127.0.0.1:{redis_port}/0",
                   "--node-id", f"node-{i}", "--trust-forwarded", "--stream-scheme", "ws", *extra]  # fmt: skip
            if api_base:
                cmd += ["--twilio-api-base-url", api_base]
            log = tmp / f"node-{i}.log"
            proc = _spawn(cmd, log, env=env, cwd=tmp)
            procs.append(proc)
            started.append(Node(f"node-{i}", port, proc, log))
        fleet = Fleet(tmp, redis_port, started, procs=procs)
        fleet.lb_port = free_port()
        conf = fleet.write_lb_config(started)
        fleet.lb = _spawn([NGINX, "-c", str(conf), "-p", str(tmp / "nginx")], tmp / "nginx.log")
        procs.append(fleet.lb)
        await wait_port(fleet.lb_port, fleet.lb)
        for node in started:
            await wait_port(node.port, node.proc, timeout=60)
        yield fleet
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.kill()
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, 10)
