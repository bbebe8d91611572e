"""Issue 11 finding 7 (log part): a peer value cannot write a forged log line.

A ``callSid`` with a newline used to end the per-call prefix's line and start a second one
that looked like the server's own. Every phonewire record's message is now one line, with
control characters escaped, whatever the start message carried.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from phonewire.logsafe import escape_control
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.processors import EchoProcessor
from phonewire.server import ServerConfig, create_app
from support.server_harness import serve
from support.wire import STREAM_SID, WireClient

FORGED = "\n2026-12-02 06:00:00 INFO phonewire.server [forged] admin logged in"
CONTROL = ("\n", "\r", "\x1b", "\x85", "\u2028", "\x00")


async def echo_bot(transport: Any, call: Any) -> None:
    task = PipelineTask(Pipeline([transport.input(), EchoProcessor(), transport.output()]))
    await PipelineRunner(handle_sigint=False).run(task)


def test_a_call_sid_with_a_newline_writes_no_forged_log_line(caplog: pytest.LogCaptureFixture) -> None:
    stream_sid = STREAM_SID

    async def main() -> None:
        config = ServerConfig(stream_secret=None, require_stream_token=False)
        async with serve(create_app(echo_bot, config)) as hostport:
            client = await WireClient.connect(hostport, respond=False)
            start = {
                "accountSid": "AC" + "0" * 32 + "\x1b[2J",
                "streamSid": stream_sid,
                "callSid": "CA" + "0" * 32 + FORGED,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": {"From": "+1555\r\nX: y", "note": "\u2028forged"},
            }
            await client.send(
                json.dumps({"event": "start", "sequenceNumber": "1", "start": start, "streamSid": stream_sid})
            )
            await client.media(b"\0\0" * 160)
            await client.recv_event("media")  # the call is up and its lines are logged
            await client.send({"event": "media", "streamSid": stream_sid, "media": {"payload": "!!\n[forged]"}})
            await client.close()
            try:
                async with asyncio.timeout(5):
                    while True:
                        await client.ws.recv()
            except ConnectionClosed:
                pass

    with caplog.at_level(logging.INFO, logger="phonewire"):
        asyncio.run(main())
    ours = [r for r in caplog.records if r.name.startswith("phonewire")]
    assert any("[forged]" in r.getMessage() for r in ours), [r.getMessage() for r in ours]  # it was logged...
    for record in ours:
        message = record.getMessage()
        assert not any(c in message for c in CONTROL), message  # ...on one line
    assert "call started" in caplog.text and "\\n2026-12-02" in caplog.text  # escaped, still readable


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("CA1\n[forged]", "CA1\\n[forged]"),
        ("a\r\nb", "a\\r\\nb"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("nel\x85x", "nel\\x85x"),
        ("ls\u2028x", "ls\\u2028x"),
        ("plain +1555 ünïcødé", "plain +1555 ünïcødé"),
    ],
)
def test_control_characters_are_escaped(raw: str, escaped: str) -> None:
    assert escape_control(raw) == escaped


def test_the_filter_escapes_arguments_and_keeps_numbers_formattable(caplog: pytest.LogCaptureFixture) -> None:
    from phonewire import logsafe

    logsafe.install()
    log = logging.getLogger("phonewire.server")
    with caplog.at_level(logging.INFO, logger="phonewire.server"):
        log.info("call %s: %d bytes in %.1fs, %r", "CA\nforged", 12, 1.25, ValueError("bad\nvalue"))
    [record] = [r for r in caplog.records if r.name == "phonewire.server"]
    assert record.getMessage() == "call CA\\nforged: 12 bytes in 1.2s, 'bad\\\\nvalue'"


def test_every_phonewire_logger_escapes_once_a_pipeline_exists() -> None:
    import logging

    from phonewire.logsafe import ControlCharFilter
    from phonewire.pipeline import Pipeline, PipelineTask
    from phonewire.services.openai import OpenAILLMService  # noqa: F401  (its module creates its logger)

    late = logging.getLogger("phonewire.services.late_module")
    PipelineTask(Pipeline([]))
    for name in [n for n in logging.Logger.manager.loggerDict if n.startswith("phonewire.")]:
        logger = logging.getLogger(name)
        assert any(isinstance(f, ControlCharFilter) for f in logger.filters), name
    assert any(isinstance(f, ControlCharFilter) for f in late.filters)
