"""``phonewire call --console-token`` adds the bot's own per-turn breakdown to the report."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import pytest

from phonewire.audio.analysis import tone
from phonewire.frames import (
    Frame,
    FrameDirection,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    UserStoppedSpeakingFrame,
)
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.processors import FrameProcessor
from phonewire.server import ServerConfig, create_app
from phonewire.testing import cli_call
from phonewire.testing.bot_turns import console_api_url
from support.server_harness import serve

TOKEN = "console-token-for-tests"


class AnswersEachTurn(FrameProcessor):
    """Says a short tone whenever the caller's turn ends."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, UserStoppedSpeakingFrame):
            await self.push_frame(TTSStartedFrame())
            await self.push_frame(TTSAudioRawFrame(audio=tone(600, 0.6, 8000), sample_rate=8000))
            await self.push_frame(TTSStoppedFrame())


async def _bot(transport: Any, info: Any) -> None:
    task = PipelineTask(Pipeline([transport.input(), AnswersEachTurn(), transport.output()]))
    await PipelineRunner(handle_sigint=False).run(task)


def test_console_api_url_follows_the_stream_url() -> None:
    assert console_api_url("ws://127.0.0.1:8000/ws") == "http://127.0.0.1:8000/calls/api"
    assert console_api_url("wss://bot.example.com/media?x=1") == "https://bot.example.com/calls/api"


@pytest.mark.slow
def test_the_report_holds_the_bots_breakdown_of_each_turn(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    cli_call.add_arguments(parser)

    async def main() -> int:
        app = create_app(_bot, ServerConfig(console_token=TOKEN, stream_scheme="ws", freeze_gc=False))
        async with serve(app) as hostport:
            url = f"ws://{hostport}/ws"
            args = parser.parse_args([url, "--json", "--console-token", TOKEN, "--max-duration", "40"])
            return await cli_call.run(args)

    assert asyncio.run(main()) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["warnings"] == [] or all("bot turns" not in w for w in report["warnings"])
    bot_turns = report["bot_turns"]
    assert bot_turns, report
    first = bot_turns[0]
    assert {"vad_stop", "first_audio_sent", "first_audio_heard"} <= set(first["stages"])
    assert first["stages"]["vad_stop"] <= first["stages"]["first_audio_sent"] <= first["stages"]["first_audio_heard"]
    assert first["heard_by"] == "provider_ack"


def test_a_wrong_token_is_a_warning_not_a_failed_call(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    cli_call.add_arguments(parser)

    async def main() -> int:
        app = create_app(_bot, ServerConfig(console_token=TOKEN, stream_scheme="ws", freeze_gc=False, vad=None))
        async with serve(app) as hostport:
            args = parser.parse_args(
                [f"ws://{hostport}/ws", "--json", "--console-token", "wrong", "--max-duration", "3"]
            )
            return await cli_call.run(args)

    asyncio.run(main())
    report = json.loads(capsys.readouterr().out)
    assert report["bot_turns"] is None
    assert any("bot turns not fetched" in w and "401" in w for w in report["warnings"])
