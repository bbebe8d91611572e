"""Call recording through a real server and the simulator: the server's stereo WAV lines up
with the simulator's own recording (caller left, bot right on the handset's timeline) within
one packet, and the JSON sidecar describes the call."""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from phonewire.audio.analysis import tone
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.processors import EchoProcessor
from phonewire.recording import RecordingConfig
from phonewire.server import ServerConfig, create_app
from phonewire.testing import HangUp, Say, Silence, simulate_call
from support.server_harness import serve

RATE = 8000
PACKET = RATE // 50  # one 20 ms packet, in samples


async def echo_bot(transport: Any, call: Any) -> None:
    task = PipelineTask(Pipeline([transport.input(), EchoProcessor(), transport.output()]))
    await PipelineRunner(handle_sigint=False).run(task)


def _channels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, RATE, 2)
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    return frames[:, 0].astype(np.float64), frames[:, 1].astype(np.float64)


def _onsets(track: np.ndarray, threshold: float = 1500.0, gap: int = 2 * PACKET) -> list[int]:
    """First sample of each burst louder than ``threshold`` (bursts apart by > ``gap``)."""
    loud = np.flatnonzero(np.abs(track) > threshold)
    if loud.size == 0:
        return []
    starts = [int(loud[0])] + [int(b) for a, b in zip(loud[:-1], loud[1:], strict=True) if b - a > gap]
    return starts


def _lag(a: np.ndarray, b: np.ndarray) -> int:
    """Samples by which ``b`` is late relative to ``a`` (cross-correlation peak)."""
    n = min(a.size, b.size)
    corr = np.correlate(b[:n], a[:n], mode="full")
    return int(np.argmax(corr)) - (n - 1)


def test_recording_lines_up_with_the_simulators_recording(tmp_path: Path) -> None:
    config = ServerConfig(vad=None, recording=RecordingConfig(dir=tmp_path / "rec"))
    script = [Silence(0.5), Say(tone(400, 0.4, RATE)), Silence(0.9), Say(tone(700, 0.3, RATE)), Silence(1.5),
              HangUp()]  # fmt: skip

    async def main() -> None:
        async with serve(create_app(echo_bot, config)) as hostport:
            report = await simulate_call(f"ws://{hostport}/ws", script=script, record_path=tmp_path / "sim.wav")
            assert report.completed, report.render_text()
        await asyncio.to_thread(config.recording.writer.stop)  # everything queued is on disk

    asyncio.run(main())
    (wav,) = (tmp_path / "rec").glob("*.wav")
    sidecar = json.loads(wav.with_suffix(".json").read_text())
    ours_caller, ours_bot = _channels(wav)
    sim_caller, sim_bot = _channels(tmp_path / "sim.wav")
    assert abs(_lag(sim_caller, ours_caller)) <= PACKET
    ours, theirs = _onsets(ours_bot), _onsets(sim_bot)
    assert len(ours) == len(theirs) == 2, (ours, theirs)
    for mine, sim in zip(ours, theirs, strict=True):
        assert abs(mine - sim) <= PACKET, (ours, theirs)
    # The echo is heard after the caller spoke, in both recordings alike.
    assert _onsets(ours_caller)[0] < ours[0]
    assert sidecar["call"]["provider"] == "twilio" and sidecar["call"]["outcome"]
    assert sidecar["recording"]["dropped_chunks"] == 0 and sidecar["recording"]["sample_rate"] == RATE
    assert sidecar["stats"]["audio_out_ms"] > 600


def _bursts(track: np.ndarray, threshold: float = 300.0, gap: int = 4 * PACKET) -> list[tuple[int, int]]:
    """(first, last) sample of each stretch of audio louder than ``threshold``."""
    loud = np.flatnonzero(np.abs(track) > threshold)
    if loud.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(loud) > gap)
    starts = [int(loud[0])] + [int(loud[i + 1]) for i in breaks]
    ends = [int(loud[i]) for i in breaks] + [int(loud[-1])]
    return list(zip(starts, ends, strict=True))


@pytest.mark.slow
def test_a_barge_in_cuts_the_bot_channel_where_the_caller_stopped_hearing_and_transcripts_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent call (fake OpenAI services) recorded server-wide: the caller talks over the
    greeting, the clear cuts the bot channel where the simulator's handset stopped playing
    (within a packet), and the sidecar's notes hold both sides' turns (TURN_OBSERVER)."""
    import test_metrics
    from test_metrics import GREETING, agent_app

    from phonewire.testing import BargeIn, WaitForBotReply
    from phonewire.testing.fakes import FakeOpenAIServer
    from phonewire.testing.script import builtin_recording

    long_greeting = GREETING + " " + " ".join(["We are open every day from nine to five."] * 4)
    monkeypatch.setattr(test_metrics, "GREETING", long_greeting)  # the bot reads it at call time
    recording = RecordingConfig(dir=tmp_path / "rec")
    script = [BargeIn.from_wav(1.5, builtin_recording("hello")), WaitForBotReply(), Silence(0.5), HangUp()]
    with FakeOpenAIServer(transcripts=["Where is my order?"], chat_replies=["It ships tomorrow."]) as fake:
        app = agent_app(fake, recording=recording)

        async def main() -> Any:
            async with serve(app) as hostport:
                report = await simulate_call(f"ws://{hostport}/ws", script=script, max_duration_s=40,
                                             record_path=tmp_path / "sim.wav")  # fmt: skip
                assert await app.state.calls.wait_empty(10)
            await asyncio.to_thread(recording.writer.stop)
            return report

        report = asyncio.run(main())
    assert report.completed and report.clears_received >= 1, report.render_text()
    (wav,) = (tmp_path / "rec").glob("*.wav")
    ours_caller, ours_bot = _channels(wav)
    sim_caller, sim_bot = _channels(tmp_path / "sim.wav")
    assert abs(_lag(sim_caller, ours_caller)) <= PACKET
    ours, theirs = _bursts(ours_bot), _bursts(sim_bot)
    assert len(ours) >= 2 and len(theirs) >= 2, (ours, theirs)
    # The greeting's burst ends at the cut: in both recordings at the same place.
    assert abs(ours[0][1] - theirs[0][1]) <= PACKET, (ours[0], theirs[0])
    assert ours[0][1] - ours[0][0] < 4 * RATE  # cut well before the long greeting's end
    notes = json.loads(wav.with_suffix(".json").read_text())["notes"]
    said = [(n["role"], n["text"]) for n in notes]
    assert ("caller", "Where is my order?") in said, said
    assert ("bot", "It ships tomorrow.") in said, said
    assert any(n["role"] == "bot" and n.get("interrupted") for n in notes), notes  # the cut-off greeting
