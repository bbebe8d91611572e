"""``--log-format json``: every line ``phonewire serve`` writes is a JSON object, the lines
of a call carry its call id, provider and stream id (also a bot's own lines, logged in its
pipeline's tasks), and a peer's control characters are escaped once, not doubled."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
from pathlib import Path

from serve_subprocess import BOT, serving

from phonewire import logsafe
from phonewire.server.json_logs import JsonFormatter
from phonewire.testing import HangUp, Silence, simulate_call
from phonewire.transports.fastapi import CallLog

BOT_LOGGING = """

import logging
_log = logging.getLogger("phonewire.testbot")
_echo_bot = bot


async def bot(transport, call):
    _log.info("= the bot's own line")  # no call prefix: the context supplies the fields
    await _echo_bot(transport, call)
"""


def test_every_line_is_json_and_call_lines_carry_the_call(tmp_path: Path) -> None:
    async def main() -> str | None:
        options = ("--log-format", "json", "--log-level", "info")
        async with serving(tmp_path, *options, workers=1, bot=BOT + BOT_LOGGING) as (base, proc):
            ws = base.replace("http", "ws") + "/ws"
            report = await simulate_call(ws, script=[Silence(0.5), HangUp()], max_duration_s=20)
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 30)
            return report.call_id

    call_id = asyncio.run(main())
    lines = (tmp_path / "server.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line parses
    assert all({"ts", "level", "logger", "message"} <= set(e) for e in entries)
    assert any(e["logger"] == "uvicorn.error" and "Uvicorn running" in e["message"] for e in entries)
    mine = [e for e in entries if e.get("call_id") == call_id]
    messages = [e["message"] for e in mine]
    assert any("call started" in m for m in messages) and any("call ended" in m for m in messages), lines
    assert any(m == "= the bot's own line" for m in messages), lines
    assert all(e["provider"] == "twilio" and e["stream_id"].startswith("MZ") for e in mine), mine


def test_a_peer_value_is_escaped_once_and_stays_one_line() -> None:
    logsafe.install("phonewire.jsontest")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    target = logging.getLogger("phonewire.jsontest")
    target.addHandler(handler)
    target.setLevel(logging.INFO)
    forged = 'CA1\n2026-01-01 INFO phonewire.server forged \x1b[31m"quoted"'
    try:
        CallLog(target, {"provider": "twilio", "call_id": forged, "stream_id": "MZ1"}).info("= from %s", forged)
    finally:
        target.removeHandler(handler)
    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["message"].endswith('= from CA1\\n2026-01-01 INFO phonewire.server forged \\x1b[31m"quoted"')
    assert entry["call_id"] == forged  # a field, not a line: JSON escaping is the only escaping it needs
    assert "\x1b" not in line
