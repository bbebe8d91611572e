"""/metrics after a real agent call (fake OpenAI services): the latency histograms are
populated, services' TTFB is there by service, and webhook refusals and readiness hold."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from serve_subprocess import samples

from phonewire.frames import TTSSpeakFrame
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.processors.aggregators import LLMContext, LLMContextAggregatorPair
from phonewire.server import ServerConfig, create_app
from phonewire.services.openai import OpenAILLMService, OpenAISTTService, OpenAITTSService
from phonewire.testing import HangUp, Say, WaitForBotReply, simulate_call
from phonewire.testing.fakes import FakeOpenAIServer
from phonewire.testing.script import builtin_recording
from support.server_harness import serve

GREETING = "Hello, how can I help?"


def agent_app(fake: FakeOpenAIServer, **config: Any) -> Any:
    """tests/conversation/agent_app.py's cascaded agent, reduced to what the metrics need."""

    async def bot(transport: Any, info: Any) -> None:
        stt = OpenAISTTService(api_key="test-key", base_url=fake.base_url, model="whisper-1")
        llm = OpenAILLMService(api_key="test-key", base_url=fake.base_url, model="gpt-4o-mini")
        tts = OpenAITTSService(api_key="test-key", base_url=fake.base_url, model="tts-1")
        pair = LLMContextAggregatorPair(LLMContext([{"role": "system", "content": "You are a phone agent."}]))
        pipeline = Pipeline([transport.input(), stt, pair.user(), llm, tts, transport.output(), pair.assistant()])
        task = PipelineTask(pipeline)
        await task.queue_frame(TTSSpeakFrame(text=GREETING))
        await PipelineRunner(handle_sigint=False, handle_sigterm=False).run(task)

    return create_app(bot, ServerConfig(vad="silero", stream_scheme="ws", freeze_gc=False, **config))


def one_agent_call(app: Any, fake: FakeOpenAIServer) -> tuple[Any, str]:
    async def main() -> tuple[Any, str]:
        async with serve(app) as hostport:
            script = [WaitForBotReply(), Say.from_wav(builtin_recording("hello")), WaitForBotReply(), HangUp()]
            report = await simulate_call(f"ws://{hostport}/ws", script=script, max_duration_s=60)
            assert await app.state.calls.wait_empty(10)  # the server has recorded the call's end
            async with httpx.AsyncClient() as http:
                return report, (await http.get(f"http://{hostport}/metrics")).text

    return asyncio.run(main())


def _count(text: str, name: str, **labels: str) -> float:
    return sum(v for lab, v in samples(text, f"{name}_count") if all(lab.get(k) == x for k, x in labels.items()))


@pytest.mark.slow
def test_an_agent_call_fills_the_latency_histograms() -> None:
    with FakeOpenAIServer(transcripts=["Where is my order?"], chat_replies=["It ships tomorrow."]) as fake:
        report, text = one_agent_call(agent_app(fake), fake)
    assert report.completed and report.turns, report.render_text()
    for stage in ("vad_stop", "transcript", "turn_end", "llm_first_token", "tts_first_byte", "first_audio_heard"):
        assert _count(text, "phonewire_turn_latency_seconds", stage=stage) >= 1, (stage, text)
    for service in ("OpenAISTTService", "OpenAILLMService", "OpenAITTSService"):
        assert _count(text, "phonewire_service_ttfb_seconds", service=service) >= 1, (service, text)
    assert _count(text, "phonewire_transport_added_latency_seconds", direction="out") >= 1
    assert _count(text, "phonewire_send_lead_seconds") >= 1  # sampled once a second while the bot spoke
    assert samples(text, "phonewire_calls_total") == [({"provider": "twilio", "outcome": "caller_hung_up"}, 1.0)]
    assert samples(text, "phonewire_active_calls") == [({}, 0.0)]


def test_webhook_refusals_are_exported_and_readyz_says_when_full() -> None:
    async def bot(transport: Any, info: Any) -> None:
        return None  # never runs: max_calls=0

    app = create_app(bot, ServerConfig(vad=None, freeze_gc=False, max_calls=0, twilio_auth_token="secret"))

    async def main() -> tuple[httpx.Response, httpx.Response, str]:
        async with serve(app) as hostport, httpx.AsyncClient(base_url=f"http://{hostport}") as http:
            forged = await http.post("/webhooks/twilio", data={"CallSid": "CA" + "1" * 32})
            ready = await http.get("/readyz")
            return forged, ready, (await http.get("/metrics")).text

    forged, ready, text = asyncio.run(main())
    assert forged.status_code == 403
    assert samples(text, "phonewire_webhook_refusals_total") == [
        ({"provider": "twilio", "reason": "bad or missing signature"}, 1.0)
    ]
    assert ready.status_code == 503 and ready.json()["status"] == "at max_calls"
