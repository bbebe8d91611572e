"""``phonewire demo``: the conversing demo bot in a child server, and a simulated Twilio call to it.

The call follows the real flow end to end, with nothing real outside this machine:

1. a fake Twilio REST API starts on 127.0.0.1 (it observes the bot's hang-up);
2. ``phonewire serve --bot phonewire.demo.conversation:conversation_bot`` starts with a fresh
   stream secret, that API as Twilio's base URL and a results folder for the bot;
3. the "carrier" POSTs the signed call webhook and gets TwiML back: the stream URL plus
   parameters, among them a single-use stream token for this call;
4. the simulator opens the stream (signed upgrade) and asks its recorded questions
   (``demo.script``), barging in once; Whisper transcribes, the brain answers, Piper speaks;
   on the caller's goodbye the bot says goodbye and hangs up through the fake REST API;
5. the call report is printed, then the bot's side (transcripts, replies, latency stages, from
   the results file the bot wrote), with the path of the stereo recording.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx

from phonewire.demo.conversation import BRAIN_ENV
from phonewire.demo.results import RESULTS_DIR_ENV, read_results, render_results
from phonewire.demo.script import conversation_script
from phonewire.telephony.signatures import twilio_signature
from phonewire.testing import CallReport, FakeProviderAPI, simulate_call
from phonewire.testing.cli_call import _printer
from phonewire.testing.providers.twilio import TwilioClient

__all__ = ["run_demo"]

#: Bound on the server coming up (imports + the VAD model load).
STARTUP_TIMEOUT_SECS = 60.0
#: Bound on the bot writing its results after the call closed.
RESULTS_TIMEOUT_SECS = 15.0
DEMO_BOT = "phonewire.demo.conversation:conversation_bot"
DEMO_AUTH_TOKEN = "demo-auth-token-not-a-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def demo_server(
    port: int, api_base_url: str, log_level: str, *, results_dir: str, brain: str = "auto"
) -> AsyncIterator[str]:
    """Run ``phonewire serve`` as a child process; yields its host:port; always stops it."""
    hostport = f"127.0.0.1:{port}"
    env = {
        **os.environ,
        "PHONEWIRE_STREAM_SECRET": secrets.token_urlsafe(32),
        "TWILIO_AUTH_TOKEN": DEMO_AUTH_TOKEN,
        RESULTS_DIR_ENV: results_dir,
        BRAIN_ENV: brain,
        "HF_HUB_OFFLINE": "1",  # the models are local files; never ask a hub
    }
    cmd = [
        sys.executable,
        "-m",
        "phonewire",
        "serve",
        "--bot",
        DEMO_BOT,
        "--port",
        str(port),
        "--public-host",
        hostport,
        "--stream-scheme",
        "ws",
        "--twilio-api-base-url",
        api_base_url,
        "--log-level",
        log_level,
    ]
    # The server's output (uvicorn's access log included) goes to stderr: stdout is the report's.
    proc = await asyncio.create_subprocess_exec(*cmd, env=env, stdout=sys.stderr.fileno())
    try:
        await _wait_healthy(hostport, proc)
        yield hostport
    finally:
        await _stop(proc)


async def _wait_healthy(hostport: str, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECS
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise RuntimeError(f"the demo server exited with code {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"http://{hostport}/healthz", timeout=1.0)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the demo server did not come up within {STARTUP_TIMEOUT_SECS:.0f}s")


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        proc.kill()
        await asyncio.wait_for(proc.wait(), 5)


async def answer_call(hostport: str, client: TwilioClient) -> tuple[str, dict[str, str]]:
    """Play Twilio's side of the call webhook: a signed POST; returns (stream URL, parameters)."""
    url = f"http://{hostport}/webhooks/twilio"
    form = {"CallSid": client.call_sid, "AccountSid": client.account_sid, "From": "+15550100", "To": "+15550199"}
    headers = {"X-Twilio-Signature": twilio_signature(url, form, DEMO_AUTH_TOKEN)}
    async with httpx.AsyncClient() as http:
        response = await http.post(url, data=form, headers=headers, timeout=5)
    response.raise_for_status()
    twiml = response.text
    stream = re.search(r'<Stream url="([^"]+)"', twiml)
    if stream is None:
        raise RuntimeError(f"unexpected TwiML: {twiml[:200]}")
    params = {unescape(k): unescape(v) for k, v in re.findall(r'<Parameter name="([^"]+)" value="([^"]*)"', twiml)}
    return unescape(stream.group(1)), params


async def run_demo(args: argparse.Namespace) -> int:
    record = Path(args.record or f"recordings/demo-{time.strftime('%Y%m%d-%H%M%S')}.wav")
    record.parent.mkdir(parents=True, exist_ok=True)
    brain = getattr(args, "brain", None) or "auto"
    with tempfile.TemporaryDirectory(prefix="phonewire-demo-") as results_dir:
        report, results = await _call(args, record, results_dir, brain)
    show = args.progress or sys.stderr.isatty()
    if show:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps({**report.to_dict(), "conversation": results}, indent=2))
    else:
        print(report.render_text())
        print()
        print(render_results(results) if results else "phonewire demo conversation: the bot wrote no results")
        print(f"\nRecording (caller left, bot right): {report.recording_path or record}")
    return 0 if report.completed and results is not None else 1


async def _call(
    args: argparse.Namespace, record: Path, results_dir: str, brain: str
) -> tuple[CallReport, dict[str, Any] | None]:
    async with FakeProviderAPI() as api:
        server = demo_server(_free_port(), api.base_url, args.log_level, results_dir=results_dir, brain=brain)
        async with server as hostport:
            report = await _simulate(args, record, hostport, api)
            results = await read_results(results_dir, report.call_id or "", RESULTS_TIMEOUT_SECS)
    return report, results


async def _simulate(args: argparse.Namespace, record: Path, hostport: str, api: FakeProviderAPI) -> CallReport:
    probe = TwilioClient()
    stream_url, params = await answer_call(hostport, probe)
    client = TwilioClient(account_sid=probe.account_sid, call_sid=probe.call_sid, custom_parameters=params)
    upgrade = {"X-Twilio-Signature": twilio_signature(stream_url, None, DEMO_AUTH_TOKEN)}
    show = args.progress or sys.stderr.isatty()
    return await simulate_call(
        stream_url,
        provider=client,
        script=conversation_script(args.audio),
        record_path=record,
        headers=upgrade,
        api=api,
        progress=_printer(sys.stderr) if show else None,
        max_duration_s=90,
    )
