"""The phonewire command: help for every sub-command, the demo end to end, calls under trouble."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from phonewire.audio.wav import read_wav
from phonewire.cli import main
from phonewire.demo.app import make_app
from phonewire.server import ServerConfig
from phonewire.testing import FakeProviderAPI, NetworkConditions, default_script, simulate_call
from server_harness import serve


@pytest.mark.parametrize("command", [[], ["serve"], ["call"], ["demo"]])
def test_every_command_explains_itself_with_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: phonewire" in out
    assert {"serve": "--workers", "call": "--jitter-ms", "demo": "--record"}.get(
        command[0] if command else "", "serve"
    ) in out


@pytest.mark.slow
def test_the_demo_completes_a_call_with_plausible_turns_and_a_two_sided_recording(tmp_path: Path) -> None:
    record = tmp_path / "demo.wav"
    done = subprocess.run(
        [sys.executable, "-m", "phonewire", "demo", "--json", "--record", str(record)],
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["completed"] and report["hangup"] == "rest"
    assert len(report["turns"]) >= 2
    assert all(300 < t["response_latency_ms"] < 2500 for t in report["turns"])
    assert report["barge_ins"] and all(t["latency_ms"] < 800 for t in report["barge_ins"])
    assert report["underruns"] == 0 and report["errors"] == []
    pcm, rate, channels = read_wav(record)
    assert channels == 2
    stereo = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2).astype(np.float64)
    caller, bot = (np.sqrt(np.mean(stereo[:, i] ** 2)) for i in (0, 1))
    assert caller > 100 and bot > 100  # both sides hold real audio


def _demo_call(network: NetworkConditions | None) -> dict[str, object]:
    async def main_() -> dict[str, object]:
        async with FakeProviderAPI() as api:
            config = ServerConfig(
                vad="silero", serializer_kwargs={"twilio": {"base_url": api.base_url, "auth_token": "t"}}
            )
            app = make_app(config)
            async with serve(app) as hostport:
                report = await simulate_call(
                    f"ws://{hostport}/ws", script=default_script(), network=network, api=api, max_duration_s=60
                )
                return report.to_dict()

    return asyncio.run(main_())


@pytest.mark.slow
def test_a_call_with_jitter_and_loss_still_completes_with_dtmf_read_back_and_pound_hang_up() -> None:
    report = _demo_call(NetworkConditions(jitter_ms=30, loss=0.03, seed=7))
    assert report["completed"], report["end_reason"]
    assert report["media_dropped"] > 0
    assert report["dtmf_sent"] == 4  # 1, 2, 3 and # (the bot read back the digits, then hung up)
    assert report["end_reason"] and report["close_code"] == 1000
    assert report["audio_received_s"] > 5
