"""``phonewire call``: the sub-command's arguments and its run, in-process against the fake bot."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from phonewire.audio.analysis import tone
from phonewire.audio.wav import read_wav, write_wav
from phonewire.testing import cli_call
from testing.fake_bot import RATE, BotConfig, FakeBot, run


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="phonewire call")
    cli_call.add_arguments(parser)
    return parser.parse_args(argv)


def test_the_default_call_prints_a_json_report_and_exits_0_when_completed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    question, recording = tmp_path / "question.wav", tmp_path / "call.wav"
    write_wav(question, tone(350, 0.25, RATE), RATE)

    async def scenario() -> tuple[int, list[str]]:
        config = BotConfig(greeting_s=0.2, dtmf_tone_s=0.25, max_reply_s=0.3)
        async with FakeBot(config) as bot:
            args = parse(bot.url, "--json", "--progress", "--audio", str(question), "--record", str(recording),
                         "--param", "tenant=acme", "--max-duration", "20")  # fmt: skip
            code = await cli_call.run(args)
            await bot.calls[0].finished.wait()
        return code, [m["start"]["customParameters"]["tenant"] for m in bot.calls[0].events("start")]

    code, tenants = run(scenario(), timeout=30)
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert code == 0 and report["completed"] and report["hangup"] == "socket_closed"
    assert tenants == ["acme"]
    assert report["dtmf_sent"] == 4  # 1, 2, 3 and #
    assert len(report["turns"]) == 2 and all(t["response_latency_ms"] for t in report["turns"])
    assert len(report["barge_ins"]) == 1 and report["clears_received"] == 1
    assert report["barge_ins"][0]["latency_ms"] is not None
    assert report["recording_path"] == str(recording) and read_wav(recording)[2] == 2
    assert "\r" in err and "sent" in err  # the live progress line


def test_the_text_report_goes_to_stdout_and_a_failed_call_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario() -> int:
        async with FakeBot(BotConfig(greeting_s=0)) as bot:
            return await cli_call.run(parse(bot.url, "--disconnect-at", "0.2"))

    assert run(scenario()) == 1
    out, err = capsys.readouterr()
    assert "NOT completed" in out and "disconnect" in out
    assert err == ""  # no progress line when stderr is not a terminal


def test_the_fake_api_flag_announces_its_address(capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario() -> int:
        async with FakeBot(BotConfig(greeting_s=0)) as bot:
            return await cli_call.run(parse(bot.url, "--fake-api", "--max-duration", "0.2"))

    assert run(scenario()) == 1
    assert "fake twilio REST API at http://127.0.0.1:" in capsys.readouterr().err


def test_impossible_impairments_exit_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cli_call.run(parse("ws://127.0.0.1:9/", "--loss", "2"))) == 2
    assert "loss" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--param", "novalue"], ["--header", "nocolon"], ["--provider", "pigeon"]])
def test_malformed_options_are_rejected_by_the_parser(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse("ws://x/", *argv)
