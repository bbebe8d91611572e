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
