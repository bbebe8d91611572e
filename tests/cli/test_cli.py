"""The phonewire command: help for every sub-command, the demo end to end, calls under trouble."""

from __future__ import annotations

import asyncio

import pytest

from phonewire.cli import main
from phonewire.demo.app import make_app
from phonewire.server import ServerConfig
from phonewire.testing import FakeProviderAPI, NetworkConditions, default_script, simulate_call
from support.server_harness import serve


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
