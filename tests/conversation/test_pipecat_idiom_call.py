"""A processor written in Pipecat's idiom forwards each frame once in a live call.

Before phonewire took Pipecat's contract, ``await super().process_frame(...)`` forwarded
too, so such a processor doubled every frame: a second StartFrame (a second pacer) and
twice the echoed audio.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from phonewire.frames import Frame, FrameDirection, InputAudioRawFrame, OutputAudioRawFrame
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.processors import FrameProcessor
from phonewire.server import ServerConfig, create_app
from phonewire.testing import HangUp, Say, WaitForBotReply, simulate_call
from phonewire.testing.script import builtin_recording
from support.server_harness import serve


class Passthrough(FrameProcessor):
    def __init__(self, seen: Counter[str]) -> None:
        super().__init__()
        self.seen = seen

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM:
            self.seen[f"{self.name}:{type(frame).__name__}"] += 1
        await self.push_frame(frame, direction)


class PipecatEcho(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            await self.push_frame(OutputAudioRawFrame(audio=frame.audio, sample_rate=frame.sample_rate))
        else:
            await self.push_frame(frame, direction)


def test_pipecat_idiom_processors_forward_each_frame_once_in_a_live_echo_call() -> None:
    seen: Counter[str] = Counter()
    last: list[Passthrough] = []

    async def bot(transport: Any, info: Any) -> None:
        chain = [Passthrough(seen) for _ in range(3)]
        last.append(chain[-1])
        pipeline = Pipeline([transport.input(), *chain[:2], PipecatEcho(), chain[2], transport.output()])
        await PipelineRunner(handle_sigint=False).run(PipelineTask(pipeline))

    async def main() -> Any:
        app = create_app(bot, ServerConfig(stream_scheme="ws", freeze_gc=False))
        async with serve(app) as hostport:
            script = [Say.from_wav(builtin_recording("hello")), WaitForBotReply(timeout=5), HangUp()]
            return await simulate_call(f"ws://{hostport}/ws", script=script, max_duration_s=30)

    report = asyncio.run(main())
    assert report.errors == [], report.render_text()
    for name in (p.name for p in last):
        assert seen[f"{name}:StartFrame"] == 1
    inputs = [n for n in seen if n.endswith(":InputAudioRawFrame")]
    assert len({seen[n] for n in inputs}) == 1  # the first two saw each caller packet exactly as often
    # the echo returns what was sent once, not twice (allow the last packets in flight at hang-up)
    assert abs(report.audio_received_s - report.audio_sent_s) < 0.3
