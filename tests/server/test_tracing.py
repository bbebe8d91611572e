"""OpenTelemetry spans for an agent call (the SDK's in-memory exporter), and none of it
loaded when tracing is off."""

from __future__ import annotations

import subprocess
import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_metrics import agent_app, one_agent_call

from phonewire.testing.fakes import FakeOpenAIServer


@pytest.mark.slow
def test_a_call_is_a_span_with_turn_spans_and_service_children() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with FakeOpenAIServer(transcripts=["Where is my order?"], chat_replies=["It ships tomorrow."]) as fake:
        report, _ = one_agent_call(agent_app(fake, tracing=True, tracer_provider=provider), fake)
    spans = exporter.get_finished_spans()
    [call] = [s for s in spans if s.name == "phonewire.call"]
    turns = [s for s in spans if s.name == "phonewire.turn"]
    assert call.attributes is not None and call.attributes["phonewire.call_id"] == report.call_id
    assert call.attributes["phonewire.provider"] == "twilio"
    assert call.attributes["phonewire.outcome"] == "caller_hung_up"
    assert len(turns) == len(call.attributes and [t for t in report.turns if t.response_latency_ms]) >= 1
    turn = turns[0]
    assert turn.parent is not None and turn.parent.span_id == call.context.span_id
    children = {s.name: s for s in spans if s.parent is not None and s.parent.span_id == turn.context.span_id}
    assert {"phonewire.stt", "phonewire.llm", "phonewire.tts"} <= set(children), sorted(children)
    assert children["phonewire.llm"].attributes["phonewire.service"] == "OpenAILLMService"  # type: ignore[index]
    for span in spans:
        assert span.attributes is not None and span.attributes["phonewire.call_id"] == report.call_id, span.name
        assert span.start_time is not None and span.end_time is not None and span.start_time <= span.end_time
        assert call.start_time <= span.start_time and span.end_time <= call.end_time, span.name  # type: ignore[operator]
    assert turn.start_time < children["phonewire.llm"].start_time < turn.end_time  # type: ignore[operator]


def test_tracing_off_imports_nothing_of_it() -> None:
    # FastAPI itself may import opentelemetry (fastapi.telemetry): phonewire must add nothing to that.
    code = (
        "import sys, fastapi, fastapi.testclient\n"
        "otel = lambda: {m for m in sys.modules if m.startswith(('opentelemetry', 'phonewire.server.tracing'))}\n"
        "before = otel()\n"
        "from phonewire.server import ServerConfig, create_app\n"
        "async def bot(t, c): pass\n"
        "with fastapi.testclient.TestClient(create_app(bot, ServerConfig(vad=None, freeze_gc=False))) as c:\n"
        "    c.get('/metrics')\n"
        "print(sorted(otel() - before))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
