"""``phonewire serve --bot module:function`` serves any bot with the built-in webhooks,
tokens and limits; a bad spec fails at once with a message, before any worker starts."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from phonewire.audio.analysis import tone
from phonewire.testing import HangUp, Say, WaitForBotReply, simulate_call

BOT = '''
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.processors import EchoProcessor


async def bot(transport, call):
    task = PipelineTask(Pipeline([transport.input(), EchoProcessor(), transport.output()]))
    await PipelineRunner(handle_sigint=False).run(task)
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    async with asyncio.timeout(30):
        while True:
            assert proc.poll() is None, "phonewire serve exited"
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)  # a child process offers no readiness event
                continue
            writer.close()
            return


@pytest.mark.slow
def test_serve_runs_the_named_bot(tmp_path: Path) -> None:
    (tmp_path / "my_echo_bot.py").write_text(BOT)
    port = _free_port()
    command = [sys.executable, "-m", "phonewire", "serve", "--bot", "my_echo_bot:bot", "--port", str(port)]
    proc = subprocess.Popen([*command, "--vad", "none", "--stream-scheme", "ws"], cwd=tmp_path, stderr=subprocess.PIPE)
    try:

        async def main():  # type: ignore[no-untyped-def]
            await _wait_for_port(port, proc)
            script = [Say(tone(440, 1.0, 8000), 8000), WaitForBotReply(timeout=5), HangUp()]
            return await simulate_call(f"ws://127.0.0.1:{port}/ws", script=script, max_duration_s=20)

        report = asyncio.run(main())
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
    assert report.completed, report.render_text()
    # the echo bot answered the tone as it came (the demo bot would greet first and not echo)
    assert 0.8 < report.audio_received_s < report.audio_sent_s + 0.2
    assert report.barge_ins == [] and report.clears_received == 0


@pytest.mark.parametrize(
    ("spec", "words"),
    [("no_colon", "module:function"), ("missing_module:bot", "cannot import"), ("my_echo_bot:nope", "no function")],
)
def test_a_bad_bot_spec_fails_at_once_with_a_message(tmp_path: Path, spec: str, words: str) -> None:
    (tmp_path / "my_echo_bot.py").write_text(BOT)
    done = subprocess.run(
        [sys.executable, "-m", "phonewire", "serve", "--bot", spec],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and words in done.stderr
