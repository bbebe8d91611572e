"""``phonewire demo``: the demo server in a child process, and a simulated Twilio call against it.

The call follows the real flow end to end, with nothing real outside this machine:

1. a fake Twilio REST API starts on 127.0.0.1 (it observes the bot's hang-up);
2. ``phonewire serve`` starts with a fresh stream secret and that API as Twilio's base URL;
3. the "carrier" POSTs the signed call webhook and gets TwiML back: the stream URL plus
   parameters, among them a single-use stream token for this call;
4. the simulator opens the stream (signed upgrade), talks, presses keys, barges in, presses
   ``#``; the bot says goodbye and hangs up through the fake REST API;
5. the report is printed, with the path of the stereo recording.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path

import httpx

from phonewire.telephony.signatures import twilio_signature
from phonewire.testing import FakeProviderAPI, default_script, simulate_call
from phonewire.testing.cli_call import _printer
from phonewire.testing.providers.twilio import TwilioClient

__all__ = ["run_demo"]

#: Bound on the server coming up (imports + the VAD model load).
STARTUP_TIMEOUT_SECS = 60.0
DEMO_AUTH_TOKEN = "demo-auth-token-not-a-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def demo_server(port: int, api_base_url: str, log_level: str) -> AsyncIterator[str]:
    """Run ``phonewire serve`` as a child process; yields its host:port; always stops it."""
    hostport = f"127.0.0.1:{port}"
    env = {
        **os.environ,
        "PHONEWIRE_STREAM_SECRET": secrets.token_urlsafe(32),
        "TWILIO_AUTH_TOKEN": DEMO_AUTH_TOKEN,
    }
    cmd = [
        sys.executable,
        "-m",
        "phonewire",
        "serve",
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
    proc = await asyncio.create_subprocess_exec(*cmd, env=env)
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
    async with FakeProviderAPI() as api, demo_server(_free_port(), api.base_url, args.log_level) as hostport:
        probe = TwilioClient()
        stream_url, params = await answer_call(hostport, probe)
        client = TwilioClient(account_sid=probe.account_sid, call_sid=probe.call_sid, custom_parameters=params)
        upgrade = {"X-Twilio-Signature": twilio_signature(stream_url, None, DEMO_AUTH_TOKEN)}
        show = args.progress or sys.stderr.isatty()
        report = await simulate_call(
            stream_url,
            provider=client,
            script=default_script(args.audio),
            record_path=record,
            headers=upgrade,
            api=api,
            progress=_printer(sys.stderr) if show else None,
            max_duration_s=90,
        )
    if show:
        print(file=sys.stderr)
    print(report.to_json() if args.json else report.render_text())
    if not args.json:
        print(f"\nRecording (caller left, bot right): {report.recording_path or record}")
    return 0 if report.completed else 1
