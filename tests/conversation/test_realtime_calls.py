"""Speech-to-speech calls end to end: real server, simulated caller (Twilio and Telnyx), and
OpenAIRealtimeLLMService against FakeRealtimeServer. Each test asserts what reached the fake
and what the caller heard."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from realtime_app import RealtimeCall, realtime_app

from phonewire.testing import BargeIn, CallSimulator, HangUp, Say, WaitForBotReply
from phonewire.testing.fakes import FakeRealtimeServer, RealtimeReply, RealtimeToolCall
from phonewire.testing.script import builtin_recording
from server_harness import serve

pytestmark = pytest.mark.slow

HELLO = builtin_recording("hello")
THANKS = builtin_recording("thanks")
GREETING = "Hello, how can I help?"
LONG = "Your order left our warehouse on Monday and it travelled through three depots before the courier took it."


async def _run(app: Any, script: list[Any], provider: str = "twilio") -> tuple[Any, CallSimulator]:
    async with serve(app) as hostport:
        sim = CallSimulator(f"ws://{hostport}/ws", provider=provider, script=script, max_duration_s=60)
        report = await sim.run()
    return report, sim


def _call(fake: FakeRealtimeServer, script: list[Any], provider: str = "twilio") -> tuple[Any, Any, RealtimeCall]:
    calls: list[RealtimeCall] = []
    report, sim = asyncio.run(_run(realtime_app(fake, calls), script, provider))
    assert report.errors == [], report.render_text()
    return report, sim, calls[0]


@pytest.mark.parametrize("provider", ["twilio", "telnyx"])
def test_a_multi_turn_call_keeps_both_sides_in_the_context(provider: str) -> None:
    with FakeRealtimeServer(
        replies=[GREETING, "Sure, what is the order number?", "You are welcome, goodbye."],
        transcripts=["I would like to know my order status.", "Thank you, that's all."],
    ) as fake:
        script = [WaitForBotReply(), Say.from_wav(HELLO), WaitForBotReply(), Say.from_wav(THANKS), WaitForBotReply()]
        report, _, call = _call(fake, [*script, HangUp()], provider)
        [session] = fake.sessions

    assert call.wire_mode and call.llm.used_prewarmed is False
    update = session.client("session.update")[0]["session"]
    assert update["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert update["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert update["tools"][0]["name"] == "get_order_status"
    answered = [t for t in report.turns if t.response_latency_ms is not None]
    assert len(answered) >= 2
    roles = [(m["role"], m["content"]) for m in call.llm.context.messages]
    assert roles == [
        ("assistant", GREETING),
        ("user", "I would like to know my order status."),
        ("assistant", "Sure, what is the order number?"),
        ("user", "Thank you, that's all."),
        ("assistant", "You are welcome, goodbye."),
    ]
