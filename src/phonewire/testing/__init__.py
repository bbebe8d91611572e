"""Test phone bots without a phone: a call simulator that plays the telephony provider.

``simulate_call(url)`` dials your bot's WebSocket exactly as Twilio would (same messages,
same 20 ms real-time media clock, marks echoed when their audio has played, ``clear``
honoured) and returns a ``CallReport`` of what a caller experienced: response latency per
turn, barge-in latency, underruns, marks, DTMF, protocol violations and how the call ended.

    import asyncio
    from phonewire.testing import Say, WaitForBotReply, simulate_call

    report = asyncio.run(simulate_call("ws://127.0.0.1:8000/media", script=[
        WaitForBotReply(),
        Say.from_wav("question.wav"),
        WaitForBotReply(),
    ]))
    assert report.completed and report.turns[0].response_latency_ms < 1500

The same engine backs ``phonewire call URL``. See docs/simulator.md.
"""

from phonewire.testing.fake_api import FakeProviderAPI, RecordedRequest
from phonewire.testing.fakes import FakeOpenAIServer as FakeOpenAIServer  # the fake LLM/TTS/STT API
from phonewire.testing.network import NetworkConditions
from phonewire.testing.playout import Playout
from phonewire.testing.providers import (
    Clear,
    Mark,
    PlayAudio,
    ProtocolViolation,
    ProviderClient,
    SendDTMF,
    ServerCommand,
    TwilioClient,
    create_provider,
    register_provider,
)
from phonewire.testing.report import (
    BargeInResult,
    CallReport,
    ProgressSnapshot,
    Turn,
    Violation,
    render_progress,
)
from phonewire.testing.script import (
    BargeIn,
    HangUp,
    Press,
    Say,
    Silence,
    Step,
    WaitForBotAudio,
    WaitForBotReply,
    WaitForBotSilence,
    WaitForHangup,
    builtin_recording,
    default_script,
)
from phonewire.testing.simulator import CallSimulator, simulate_call

__all__ = [
    "BargeIn",
    "BargeInResult",
    "CallReport",
    "CallSimulator",
    "Clear",
    "FakeProviderAPI",
    "HangUp",
    "Mark",
    "NetworkConditions",
    "PlayAudio",
    "Playout",
    "Press",
    "ProgressSnapshot",
    "ProtocolViolation",
    "ProviderClient",
    "RecordedRequest",
    "Say",
    "SendDTMF",
    "ServerCommand",
    "Silence",
    "Step",
    "Turn",
    "TwilioClient",
    "Violation",
    "WaitForBotAudio",
    "WaitForBotReply",
    "WaitForBotSilence",
    "WaitForHangup",
    "builtin_recording",
    "create_provider",
    "default_script",
    "register_provider",
    "render_progress",
    "simulate_call",
]
