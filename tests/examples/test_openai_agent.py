"""examples/openai_agent.py keeps its contract, checked from outside: a separate process
started as ``python examples/openai_agent.py --host H --port P`` serves a Twilio ``/ws``
and talks to whatever ``OPENAI_BASE_URL`` names (here a FakeOpenAIServer)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from phonewire.testing import HangUp, Say, WaitForBotReply, simulate_call
from phonewire.testing.fakes import FakeOpenAIServer, TextReply, ToolCall, ToolCallsReply, validate_chat_request
from phonewire.testing.script import builtin_recording

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).parents[2] / "examples" / "openai_agent.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            assert proc.poll() is None, "the example exited before serving"
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)  # a child process offers no readiness event
                continue
            writer.close()
            return


def test_the_example_serves_a_twilio_agent_on_the_configured_openai_base_url() -> None:
    with FakeOpenAIServer(
        transcripts=["What time is it?"],
        chat_replies=[
            "Hello, how can I help?",
            ToolCallsReply([ToolCall("get_current_time", {})]),
            TextReply("It is a fine time."),
        ],
    ) as fake:
        port = _free_port()
        env = {
            **os.environ,
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_LLM_MODEL": "gpt-4o-mini",
            "OPENAI_STT_MODEL": "whisper-1",
            "OPENAI_TTS_MODEL": "tts-1",
        }
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
        chat = fake.chat_requests
        speech = [r.json["input"] for r in fake.speech_requests]

    assert report.completed, report.render_text() + stderr.decode(errors="replace")[-2000:]
    assert len(chat) == 3
    for request in chat:
        validate_chat_request(request.json)
        assert request.json["model"] == "gpt-4o-mini"
    assert chat[0].json["messages"][0]["role"] == "system"
    tool_message = chat[2].json["messages"][-1]
    assert tool_message["role"] == "tool" and "now" in tool_message["content"]
    assert speech[0].startswith("Hello") and "It is a fine time." in " ".join(speech)
    assert all(r.json["model"] == "tts-1" for r in fake.speech_requests)
    assert fake.transcription_requests[0].form["model"] == "whisper-1"
    assert report.turns and report.turns[0].response_latency_ms is not None
