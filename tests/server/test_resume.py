"""Resumed streams through a real server and the simulator: a verified raw-PCM or Vonage call
whose socket drops mid-call (no close frame) is held for ``resume_window_secs``; the caller
reconnects (``NetworkConditions(reconnect_after_s=...)``: a new socket, the same call id and
token) and the same bot session goes on - its LLM context still holds the turn before the
drop. A call that does not reconnect ends once the window has passed, as a disconnect."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from phonewire.frames import TTSSpeakFrame
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.processors import EchoProcessor
from phonewire.processors.aggregators import LLMContext, LLMContextAggregatorPair
from phonewire.server import ServerConfig, create_app
from phonewire.services.openai import OpenAILLMService, OpenAISTTService, OpenAITTSService
from phonewire.telephony.tokens import STREAM_TOKEN_PARAMETER, StreamTokenSigner
from phonewire.testing import HangUp, NetworkConditions, Say, Silence, WaitForBotReply, simulate_call
from phonewire.testing.fakes import FakeOpenAIServer
from phonewire.testing.providers.raw_pcm import RawPCMClient
from phonewire.testing.providers.vonage import VonageClient
from phonewire.testing.script import builtin_recording
from phonewire.testing.simulator import CallSimulator
from support.server_harness import serve

SECRET = "resume-stream-secret-0123456789abcdef"
GREETING = "Hello, how can I help?"
FIRST, SECOND = "Where is my order?", "And when does it arrive?"


class Seen:
    """What the bots saw, by event: the transports, and when each event fired."""

    def __init__(self) -> None:
        self.transports: list[Any] = []
        self.events: list[tuple[str, float]] = []

    def watch(self, transport: Any) -> None:
        self.transports.append(transport)
        for name in ("on_client_detached", "on_client_resumed"):
            transport.add_event_handler(name, lambda _t, *_a, n=name: self.events.append((n, time.monotonic())))

    def at(self, name: str) -> list[float]:
        return [t for n, t in self.events if n == name]


def _agent(fake: FakeOpenAIServer, seen: Seen) -> Any:
    async def bot(transport: Any, info: Any) -> None:
        seen.watch(transport)
        stt = OpenAISTTService(api_key="k", base_url=fake.base_url, model="whisper-1")
        llm = OpenAILLMService(api_key="k", base_url=fake.base_url, model="gpt-4o-mini")
        tts = OpenAITTSService(api_key="k", base_url=fake.base_url, model="tts-1")
        pair = LLMContextAggregatorPair(LLMContext([{"role": "system", "content": "You are a phone agent."}]))
        pipeline = Pipeline([transport.input(), stt, pair.user(), llm, tts, transport.output(), pair.assistant()])
        task = PipelineTask(pipeline)
        await task.queue_frame(TTSSpeakFrame(text=GREETING))
        await PipelineRunner(handle_sigint=False, handle_sigterm=False).run(task)

    return bot


def _echo(seen: Seen) -> Any:
    async def bot(transport: Any, info: Any) -> None:
        seen.watch(transport)
        task = PipelineTask(Pipeline([transport.input(), EchoProcessor(), transport.output()]))
        await PipelineRunner(handle_sigint=False, handle_sigterm=False).run(task)

    return bot


def _config(**kw: Any) -> ServerConfig:
    return ServerConfig(stream_secret=SECRET, stream_scheme="ws", freeze_gc=False, **kw)


def _client(provider: str) -> Any:
    if provider == "vonage":
        call_id = str(uuid.uuid4())
        token = StreamTokenSigner(SECRET).mint(call_id, provider="vonage")
        return VonageClient(call_uuid=call_id, custom_parameters={STREAM_TOKEN_PARAMETER: token})
    call_id = "resume-" + uuid.uuid4().hex[:8]
    token = StreamTokenSigner(SECRET).mint(call_id, provider="raw_pcm")
    return RawPCMClient(call_id=call_id, custom_parameters={STREAM_TOKEN_PARAMETER: token})


def _resumed_agent_call(provider: str) -> tuple[Any, Any, Seen, FakeOpenAIServer]:
    seen = Seen()
    hello = builtin_recording("hello")
    # Turn 1, then a pause long enough that the drop (at 9 s) falls in it whatever the
    # services' pace; after the reconnect, turn 2.
    script = [WaitForBotReply(), Say.from_wav(hello), WaitForBotReply(), Silence(12.0), Say.from_wav(hello),
              WaitForBotReply(), HangUp()]  # fmt: skip
    network = NetworkConditions(disconnect_at_s=9.0, reconnect_after_s=1.0)
    with FakeOpenAIServer(transcripts=[FIRST, SECOND], chat_replies=["It ships tomorrow.", "On Friday."]) as fake:
        app = create_app(_agent(fake, seen), _config(vad="silero", resume_window_secs=5.0))

        async def main() -> tuple[Any, Any]:
            async with serve(app) as hostport:
                client = _client(provider)
                sim = CallSimulator(f"ws://{hostport}/ws", provider=client, script=script, network=network,
                                    max_duration_s=60)  # fmt: skip
                report = await sim.run()
                assert await app.state.calls.wait_empty(10)
                return report, sim

        report, sim = asyncio.run(main())
    return report, sim, seen, fake


@pytest.mark.slow
@pytest.mark.parametrize("provider", ["raw_pcm", "vonage"])
def test_a_dropped_call_resumes_with_the_same_bot_and_its_context(provider: str) -> None:
    report, sim, seen, fake = _resumed_agent_call(provider)
    assert report.completed, report.render_text()
    assert len(sim.reconnected_at) == 1, report.render_text()
    assert len(seen.transports) == 1  # one bot session for the whole call
    (transport,) = seen.transports
    assert transport.resumes == 1 and len(seen.at("on_client_detached")) == 1 and len(seen.at("on_client_resumed")) == 1
    chats = fake.chat_requests
    assert len(chats) == 2, [c.json for c in chats]
    messages = chats[1].json["messages"]
    said = [(m["role"], m["content"]) for m in messages if m["role"] in ("user", "assistant")]
    assert ("user", FIRST) in said and ("user", SECOND) in said, said  # turn 1 survived the drop
    assert ("assistant", "It ships tomorrow.") in said, said
    # The second reply was heard on the new socket.
    assert report.turns and report.turns[-1].response_latency_ms is not None, report.render_text()


def test_a_dropped_call_that_does_not_reconnect_ends_after_the_window() -> None:
    seen = Seen()
    window = 1.5
    app = create_app(_echo(seen), _config(vad=None, resume_window_secs=window))

    async def main() -> tuple[Any, float]:
        async with serve(app) as hostport:
            drop = NetworkConditions(disconnect_at_s=1.0)
            script = [Silence(5), HangUp()]
            report = await simulate_call(
                f"ws://{hostport}/ws", provider=_client("raw_pcm"), script=script, network=drop, max_duration_s=10
            )
            assert await app.state.calls.wait_empty(window + 5)
            return report, time.monotonic()

    report, ended = asyncio.run(main())
    assert not report.completed and "disconnect" in (report.end_reason or ""), report.render_text()
    (detached,) = seen.at("on_client_detached")
    assert window - 0.1 <= ended - detached <= window + 2.0
    (transport,) = seen.transports
    assert transport.resumes == 0 and transport.stats.close_reason == "client disconnected"  # as without resume
    assert transport.stats.hangup != "sent"


def test_a_deliberate_close_or_an_unverified_call_is_not_held() -> None:
    """A close frame is a hang-up: the call ends at once, with resume on."""
    seen = Seen()
    app = create_app(_echo(seen), _config(vad=None, resume_window_secs=30.0))

    async def main() -> float:
        async with serve(app) as hostport:
            script = [Silence(0.5), HangUp()]
            report = await simulate_call(f"ws://{hostport}/ws", provider=_client("raw_pcm"), script=script)
            assert report.completed
            started = time.monotonic()
            assert await app.state.calls.wait_empty(5)
            return time.monotonic() - started

    assert asyncio.run(main()) < 5
    assert seen.at("on_client_detached") == []
