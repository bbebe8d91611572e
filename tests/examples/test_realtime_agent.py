"""examples/realtime_agent.py keeps its contract, checked from outside: a separate process
started as ``python examples/realtime_agent.py --host H --port P`` serves a Twilio ``/ws`` and
talks to the Realtime endpoint derived from ``OPENAI_BASE_URL`` (here a FakeRealtimeServer)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_openai_agent import _free_port, _wait_for_port

from phonewire.testing import HangUp, Say, WaitForBotReply, simulate_call
from phonewire.testing.fakes import FakeRealtimeServer, RealtimeReply, RealtimeToolCall
from phonewire.testing.script import builtin_recording

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).parents[2] / "examples" / "realtime_agent.py"


def test_the_realtime_example_serves_a_twilio_agent_on_the_configured_base_url() -> None:
    tool = RealtimeReply(tool_calls=(RealtimeToolCall("get_current_time", {}),))
    with FakeRealtimeServer(replies=["Hello, how can I help?", tool, "It is a fine time."]) as fake:
        port = _free_port()
        env = {**os.environ, "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-test"}
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:

            async def main():  # type: ignore[no-untyped-def]
                await _wait_for_port(port, proc)
                script = [WaitForBotReply(), Say.from_wav(builtin_recording("hello")), WaitForBotReply(), HangUp()]
                return await simulate_call(f"ws://127.0.0.1:{port}/ws", script=script, max_duration_s=45)

            report = asyncio.run(main())
        finally:
            proc.terminate()
            _, stderr = proc.communicate(timeout=15)
        [session] = fake.sessions

    assert report.completed, report.render_text() + stderr.decode(errors="replace")[-2000:]
    assert session.path.startswith("/v1/realtime?model=gpt-realtime") and session.has_auth
    update = session.client("session.update")[0]["session"]
    assert update["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    outputs = [e["item"] for e in session.client("conversation.item.create")]
    assert outputs and outputs[0]["type"] == "function_call_output" and "now" in outputs[0]["output"]
    assert report.turns and report.turns[0].response_latency_ms is not None
