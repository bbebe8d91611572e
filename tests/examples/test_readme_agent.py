"""The README's phone agent runs as printed: its code block, served, answers a simulated call."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from phonewire.testing import HangUp, Say, WaitForBotReply, simulate_call
from phonewire.testing.fakes import FakeOpenAIServer, TextReply, ToolCall, ToolCallsReply
from phonewire.testing.script import builtin_recording
from support.server_harness import serve

pytestmark = pytest.mark.slow
README = Path(__file__).parents[2] / "README.md"


def _agent_block() -> str:
    section = README.read_text().split("## A phone agent", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_the_readme_agent_greets_uses_its_tool_and_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer(
        transcripts=["Where is order 7?"],
        chat_replies=[
            "Hi, how can I help?",
            ToolCallsReply([ToolCall("lookup_order", {"order_id": "7"})]),
            TextReply("Order 7 has shipped."),
        ],
    ) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        namespace: dict[str, Any] = {}
        exec(compile(_agent_block(), "README.md", "exec"), namespace)
        app = namespace["app"]
        app.state.config.stream_scheme = "ws"

        async def main() -> Any:
            async with serve(app) as hostport:
                script = [WaitForBotReply(), Say.from_wav(builtin_recording("hello")), WaitForBotReply(), HangUp()]
                return await simulate_call(f"ws://{hostport}/ws", script=script, max_duration_s=40)

        report = asyncio.run(main())
        speech = " ".join(r.json["input"] for r in fake.speech_requests)
        tool_message = fake.chat_requests[2].json["messages"][-1]

    assert report.errors == [], report.render_text()
    assert "Hi, how can I help?" in speech and "Order 7 has shipped." in speech
    assert tool_message["role"] == "tool" and "shipped" in tool_message["content"]
