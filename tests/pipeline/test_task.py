"""PipelineTask: start, graceful end, cancel, upstream end/cancel requests, event handlers."""

from __future__ import annotations

import asyncio

from phonewire.frames import CancelFrame, CancelTaskFrame, EndFrame, EndTaskFrame, Frame, FrameDirection, TextFrame
from phonewire.pipeline import Pipeline, PipelineParams, PipelineRunner, PipelineTask
from phonewire.processors import FrameProcessor


class Collector(FrameProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        self.seen.append(frame)
        await self.push_frame(frame, direction)


class Stuck(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, EndFrame):
            await asyncio.sleep(3600)
        await self.push_frame(frame, direction)


class AsksUpstream(FrameProcessor):
    def __init__(self, frame: Frame) -> None:
        super().__init__()
        self.frame = frame

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await self.push_frame(frame, direction)
        if isinstance(frame, TextFrame):
            await self.push_frame(self.frame, FrameDirection.UPSTREAM)


def test_frames_queued_before_run_flow_after_the_start_and_end_finishes_the_task() -> None:
    async def main() -> list[str]:
        collector = Collector()
        task = PipelineTask(Pipeline([collector]))
        await task.queue_frames([TextFrame(text="hello"), EndFrame()])
        await asyncio.wait_for(task.run(), 5)
        assert task.has_finished()
        return [type(f).__name__ for f in collector.seen]

    assert asyncio.run(main()) == ["StartFrame", "TextFrame", "EndFrame"]


def test_cancel_returns_at_once_and_stops_a_stuck_pipeline_within_the_cancel_timeout() -> None:
    async def main() -> list[str]:
        collector = Collector()
        task = PipelineTask(Pipeline([Stuck(), collector]), PipelineParams(cancel_timeout_secs=1))
        runner = asyncio.ensure_future(task.run())
        await task.end()
        await asyncio.sleep(0.1)
        await asyncio.wait_for(task.cancel(), 0.05)
        await asyncio.wait_for(runner, 3)
        return [type(f).__name__ for f in collector.seen]

    assert asyncio.run(main())[-1] == "CancelFrame"


def test_a_graceful_end_stuck_past_its_timeout_is_cancelled() -> None:
    async def main() -> bool:
        task = PipelineTask(Pipeline([Stuck()]), PipelineParams(end_timeout_secs=0.3, cancel_timeout_secs=1))
        await task.end()
        await asyncio.wait_for(task.run(), 3)
        return task.has_finished()

    assert asyncio.run(main())


def test_processors_can_ask_the_task_to_end_or_cancel_from_upstream() -> None:
    async def main(request: Frame) -> str:
        collector = Collector()
        task = PipelineTask(Pipeline([AsksUpstream(request), collector]))
        await task.queue_frame(TextFrame(text="go"))
        await asyncio.wait_for(task.run(), 5)
        return type(collector.seen[-1]).__name__

    assert asyncio.run(main(EndTaskFrame())) == "EndFrame"
    assert asyncio.run(main(CancelTaskFrame())) == "CancelFrame"


def test_pipeline_events_fire_and_slow_handlers_do_not_block_the_pipeline() -> None:
    async def main() -> list[str]:
        fired: list[str] = []
        task = PipelineTask(Pipeline([Collector()]), PipelineParams(cleanup_timeout_secs=0.2))

        @task.event_handler("on_pipeline_started")
        async def started(t: PipelineTask) -> None:
            fired.append("started")
            await asyncio.sleep(10)  # a slow handler: must not hold up the frames

        @task.event_handler("on_pipeline_finished")
        def finished(t: PipelineTask) -> None:
            fired.append("finished")

        await task.queue_frame(EndFrame())
        await asyncio.wait_for(PipelineRunner(handle_sigint=False).run(task), 3)
        return fired

    assert asyncio.run(main()) == ["started", "finished"]


def test_an_unknown_event_name_is_an_error_not_a_silent_no_op() -> None:
    task = PipelineTask(Pipeline([]))
    try:
        task.add_event_handler("on_pipline_started", lambda t: None)
    except ValueError as exc:
        assert "on_pipeline_started" in str(exc)
    else:
        raise AssertionError("typo accepted")


def test_a_cancel_frame_queued_by_the_user_cancels() -> None:
    async def main() -> str:
        collector = Collector()
        task = PipelineTask(Pipeline([collector]))
        await task.queue_frame(CancelFrame())
        await asyncio.wait_for(task.run(), 3)
        return type(collector.seen[-1]).__name__

    assert asyncio.run(main()) == "CancelFrame"


def test_the_runner_turns_sigterm_into_a_cancel_and_removes_its_handlers() -> None:
    import os
    import signal

    async def main() -> tuple[str, bool]:
        collector = Collector()
        task = PipelineTask(Pipeline([collector]))

        @task.event_handler("on_pipeline_started")
        def started(t: PipelineTask) -> None:
            os.kill(os.getpid(), signal.SIGTERM)

        await asyncio.wait_for(PipelineRunner(handle_sigint=False, handle_sigterm=True).run(task), 5)
        still_installed = asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
        return type(collector.seen[-1]).__name__, still_installed

    assert asyncio.run(main()) == ("CancelFrame", False)
