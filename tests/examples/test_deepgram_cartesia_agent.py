"""examples/deepgram_cartesia_agent.py keeps its contract, checked from outside: a separate process
started as ``python examples/deepgram_cartesia_agent.py --host H --port P`` serves a Twilio ``/ws``
and talks to whatever ``DEEPGRAM_BASE_URL``, ``OPENAI_BASE_URL`` and ``CARTESIA_BASE_URL`` name
(here the three fakes), with μ-law passed through both ways."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from phonewire.audio.g711 import pcm_to_ulaw
from phonewire.audio.wav import read_wav
from phonewire.testing import HangUp, Say, WaitForBotReply, simulate_call
from phonewire.testing.fakes import (
    FakeCartesiaServer,
    FakeDeepgramServer,
    FakeOpenAIServer,
    TextReply,
    ToolCall,
    ToolCallsReply,
    validate_chat_request,
)
from phonewire.testing.script import builtin_recording

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).parents[2] / "examples" / "deepgram_cartesia_agent.py"
HELLO = builtin_recording("hello")
CALLER_TEXT = "What time is it?"
MULAW_8K = {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000}


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


def test_the_example_answers_a_call_on_deepgram_openai_and_cartesia_with_mulaw_both_ways() -> None:
    with (
        FakeOpenAIServer(
            chat_replies=[
                "Hello, how can I help?",
                ToolCallsReply([ToolCall("get_current_time", {})]),
                TextReply("It is a fine time."),
            ],
        ) as openai,
        FakeDeepgramServer(transcripts=[CALLER_TEXT]) as deepgram,
        FakeCartesiaServer() as cartesia,
    ):
        port = _free_port()
        env = {
            **os.environ,
            "OPENAI_BASE_URL": openai.base_url,
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_LLM_MODEL": "gpt-4o-mini",
            "DEEPGRAM_BASE_URL": deepgram.base_url,
            "DEEPGRAM_API_KEY": deepgram.api_key,
            "CARTESIA_BASE_URL": cartesia.base_url,
            "CARTESIA_API_KEY": str(cartesia.api_key),
        }
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:

            async def main() -> Any:
                await _wait_for_port(port, proc)
                script = [WaitForBotReply(), Say.from_wav(HELLO), WaitForBotReply(), HangUp()]
                return await simulate_call(f"ws://127.0.0.1:{port}/ws", script=script, max_duration_s=45)

            report = asyncio.run(main())
        finally:
            proc.terminate()
            _, stderr = proc.communicate(timeout=15)
        chat = openai.chat_requests
        [dg] = deepgram.connections
        dg_audio = bytes(dg.audio)
        requests = [m.data for m in cartesia.received if isinstance(m.data, dict) and "transcript" in m.data]
        contexts = list(cartesia.contexts.values())

    assert report.completed, report.render_text() + stderr.decode(errors="replace")[-2000:]
    # the greeting, then the caller's turn answered through the tool
    assert len(chat) == 3
    for request in chat:
        validate_chat_request(request.json)
        assert request.json["model"] == "gpt-4o-mini"
    assert chat[0].json["messages"][0]["role"] == "system"
    assert chat[1].json["messages"][-1] == {"role": "user", "content": CALLER_TEXT}  # Deepgram's words
    tool_message = chat[2].json["messages"][-1]
    assert tool_message["role"] == "tool" and "now" in tool_message["content"]
    spoken = "".join(r["transcript"] for r in requests)
    assert spoken.startswith("Hello") and "It is a fine time." in spoken
    assert report.turns and report.turns[0].response_latency_ms is not None
    assert report.audio_received_s > 1.0
    # μ-law in: one Deepgram connection as mulaw/8000, fed the line's own bytes
    assert dg.is_mulaw and dg.auth_scheme == "Token"
    hello_ulaw = pcm_to_ulaw(read_wav(HELLO)[0])
    assert hello_ulaw[: len(hello_ulaw) // 160 * 160] in dg_audio
    assert dg.finalizes >= 1
    # μ-law out: every Cartesia context asked for pcm_mulaw at 8 kHz, and produced audio
    assert requests and all(r["output_format"] == MULAW_8K for r in requests)
    assert cartesia.connections == 1 and all(c.audio_bytes > 0 for c in contexts if c.transcripts)
