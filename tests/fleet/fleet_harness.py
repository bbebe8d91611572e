"""A fleet on loopback: redis-server, ``phonewire serve`` nodes and nginx, all subprocesses.

Why real processes: the fleet's promises are about separate machines - a token spent on one
node, a limit counted across nodes, a command crossing nodes, nginx proxying WebSocket
upgrades - so each node is its own ``phonewire serve``, Redis is a real ``redis-server`` and
the load balancer is Debian's nginx with a generated config. Everything binds 127.0.0.1 on
free ports under a temporary directory; every process is killed on exit. Start-up is waited
for by polling a port or an endpoint, bounded (the processes have no readiness signal).

The admission and Redis-down tests need no nginx and want their bot's events: their nodes
are in-process (``local_node``: ``create_app`` on a real uvicorn in the test's loop), which
starts in well under a second instead of a few seconds per ``phonewire serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from phonewire import Pipeline, PipelineRunner, PipelineTask
from phonewire.audio.analysis import tone
from phonewire.fleet import FleetConfig
from phonewire.frames import FrameDirection, OutputAudioRawFrame, TTSSpeakFrame
from phonewire.processors import EchoProcessor, FrameProcessor
from phonewire.server import ServerConfig, create_app
from phonewire.testing.script import CallerView, Packet, Step

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))
from serve_subprocess import BOT

from support.server_harness import serve
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


async def start_redis(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    """A ``redis-server`` on 127.0.0.1:``port`` with no persistence (a restart starts empty),
    returned once it accepts connections. The caller kills it."""
    assert REDIS is not None
    log = tmp / f"redis-{port}.log"
    cmd = [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)]
    proc = await asyncio.to_thread(_spawn, cmd, log)  # fork + exec off the loop, as above
    try:
        await wait_port(port, proc)
    except BaseException:
        proc.kill()
        raise
    return proc


async def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc`` (if still running) and reap it, bounded, off the event loop (in-process
    nodes share the loop: a blocking wait would stall their calls)."""
    if proc.poll() is None:
        proc.kill()
    await asyncio.to_thread(proc.wait, 10)


def stream_parameters(answer: str) -> dict[str, str]:
    """The ``<Parameter name=... value=...>`` pairs of a TwiML ``<Stream>``: what Twilio puts in
    the stream's ``start.customParameters`` (the stream token, the called number)."""
    return dict(re.findall(r'<Parameter name="([^"]+)" value="([^"]*)"', answer))


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
        assert NGINX is not None
        redis = await start_redis(tmp, redis_port)
        procs.append(redis)
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


# --- in-process nodes: create_app under a real uvicorn on 127.0.0.1, in the test's loop -------

needs_redis = pytest.mark.skipif(REDIS is None, reason="needs redis-server (apt-get install redis-server)")


class ToneTTS(FrameProcessor):
    """A stand-in TTS: a ``TTSSpeakFrame`` (a ``say`` command) becomes 0.8 s of 440 Hz."""

    async def process_frame(self, frame: Any, direction: FrameDirection) -> None:
        if isinstance(frame, TTSSpeakFrame):
            await self.push_frame(OutputAudioRawFrame(audio=tone(440, 0.8, 8000), sample_rate=8000, num_channels=1))
            return
        await self.push_frame(frame, direction)


class EchoBots:
    """The bot of in-process nodes (echo + ``ToneTTS``); ``started(call_id)`` is set when the
    call's bot starts, so a test awaits admission instead of polling for it."""

    def __init__(self) -> None:
        self._started: dict[str, asyncio.Event] = {}

    def started(self, call_id: str) -> asyncio.Event:
        return self._started.setdefault(call_id, asyncio.Event())

    async def bot(self, transport: Any, call: Any) -> None:
        self.started(str(call.call_id)).set()
        task = PipelineTask(Pipeline([transport.input(), EchoProcessor(), ToneTTS(), transport.output()]))
        await PipelineRunner(handle_sigint=False).run(task)


@dataclass(frozen=True, slots=True)
class HoldUntil(Step):
    """The caller stays on the line (silence every packet) until ``release`` is set."""

    release: asyncio.Event
    timeout: float = 60.0

    def run(self, caller: CallerView) -> Iterator[Packet]:
        started = caller.t_s
        while not self.release.is_set():
            if caller.t_s - started > self.timeout:
                caller.log.notes.append(f"HoldUntil: not released within {self.timeout}s")
                return
            yield Packet()


@dataclass
class LocalNode:
    name: str
    app: Any
    hostport: str

    @property
    def base(self) -> str:
        return f"http://{self.hostport}"

    @property
    def ws(self) -> str:
        return f"ws://{self.hostport}/ws"

    async def answer(self, call_sid: str, to: str) -> httpx.Response:
        """The signed Twilio answer webhook for a call to ``to``."""
        form = {"CallSid": call_sid, "AccountSid": ACCOUNT_SID, "From": "+15550001", "To": to}
        async with httpx.AsyncClient(timeout=10) as http:
            return await signed_answer(http, self.base, "twilio", form)

    async def get(self, path: str, *, auth: bool = True) -> httpx.Response:
        headers = {"Authorization": f"Bearer {API_TOKEN}"} if auth else {}
        async with httpx.AsyncClient(base_url=self.base, timeout=10) as http:
            return await http.get(path, headers=headers)

    async def post(self, path: str, body: object) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.base, timeout=10) as http:
            return await http.post(path, json=body, headers={"Authorization": f"Bearer {API_TOKEN}"})

    async def metric(self, name: str, **labels: str) -> float:
        """One sample of ``/metrics`` (0 when absent)."""
        text = (await self.get("/metrics", auth=False)).text
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        for line in text.splitlines():
            series, _, value = line.rpartition(" ")
            if series == (f"{name}{{{want}}}" if want else name):
                return float(value)
        return 0.0


@contextlib.asynccontextmanager
async def local_node(
    bots: EchoBots, name: str, redis_port: int, *, secret: str | None = SECRET, **fleet: Any
) -> AsyncIterator[LocalNode]:
    """One fleet node: ``create_app`` with ``FleetConfig(**fleet)`` on a real uvicorn (lifespan
    on, so the fleet starts and stops with it), in this event loop."""
    config = ServerConfig(
        vad=None, stream_secret=secret, twilio_auth_token=TWILIO_TOKEN, trust_forwarded=False,
        fleet=FleetConfig(redis_url=f"redis://127.0.0.1:{redis_port}/0", node_id=name, api_token=API_TOKEN, **fleet),
    )  # fmt: skip
    app = create_app(bots.bot, config)
    async with serve(app, lifespan="on") as hostport:
        yield LocalNode(name, app, hostport)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> float:
    """Poll ``check`` (state in another process: Redis, a server) until it holds, bounded;
    returns the seconds it took."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


class LogLines(logging.Handler):
    """Every ``phonewire`` log line of the test, formatted as the readable format shows it."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name} {record.getMessage()}")

    def matching(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]

    @contextlib.contextmanager
    def installed(self) -> Iterator[LogLines]:
        logger = logging.getLogger("phonewire")
        level = logger.level
        logger.addHandler(self)
        logger.setLevel(logging.INFO)
        try:
            yield self
        finally:
            logger.removeHandler(self)
            logger.setLevel(level)
