"""Pipecat's processor contract: ``process_frame`` does bookkeeping only; the subclass forwards.

Before this contract phonewire's base method forwarded the frame itself, so a processor in
Pipecat's idiom (``await super().process_frame(...)`` then ``await self.push_frame(...)``)
forwarded every frame twice, 2^k times through k such processors.
"""

from __future__ import annotations

import asyncio
import gc

import pytest

from phonewire import PipelineParams
from phonewire.exceptions import ConfigurationError
from phonewire.frames import (
    EndFrame,
    Frame,
    FrameDirection,
    InterruptionFrame,
    InterruptionTaskFrame,
    MetricsFrame,
    StartFrame,
    TextFrame,
    TTFBMetricsData,
    UserStartedSpeakingFrame,
)
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask, PipelineWorker, WorkerRunner
from phonewire.processors import FrameProcessor


class PipecatIdiom(FrameProcessor):
    """Exactly how a Pipecat processor is written."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class Collector(FrameProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self.seen.append(frame)
        await self.push_frame(frame, direction)


def _run(task: PipelineTask, timeout: float = 5.0) -> None:
    asyncio.run(asyncio.wait_for(task.run(), timeout))


def test_pipecat_idiom_forwards_each_frame_once_through_many_processors() -> None:
    collector = Collector()
    task = PipelineTask(Pipeline([*(PipecatIdiom() for _ in range(6)), collector]))

    async def main() -> None:
        await task.queue_frames([TextFrame(text="a"), TextFrame(text="b"), EndFrame()])
        await asyncio.wait_for(task.run(), 5)

    asyncio.run(main())
    names = [type(f).__name__ for f in collector.seen]
    assert names == ["StartFrame", "TextFrame", "TextFrame", "EndFrame"]


def test_base_process_frame_forwards_nothing() -> None:
    class Swallow(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, StartFrame | EndFrame):
                await self.push_frame(frame, direction)

    collector = Collector()
    task = PipelineTask(Pipeline([Swallow(), collector]))

    async def main() -> None:
        await task.queue_frames([TextFrame(text="dropped"), EndFrame()])
        await asyncio.wait_for(task.run(), 5)

    asyncio.run(main())
    assert [type(f).__name__ for f in collector.seen] == ["StartFrame", "EndFrame"]


def test_metrics_settings_reach_processors_and_ttfb_is_reported_once_when_asked() -> None:
    class Service(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            await self.push_frame(frame, direction)
            if isinstance(frame, TextFrame):
                await self.start_ttfb_metrics()
                await self.stop_ttfb_metrics()

    service, collector = Service(), Collector()
    params = PipelineParams(enable_metrics=True, enable_usage_metrics=True, report_only_initial_ttfb=True)
    task = PipelineWorker(Pipeline([service, collector]), params)

    async def main() -> None:
        await task.queue_frames([TextFrame(text="1"), TextFrame(text="2"), EndFrame()])
        await asyncio.wait_for(task.run(), 5)

    asyncio.run(main())
    metrics = [f for f in collector.seen if isinstance(f, MetricsFrame)]
    assert metrics[0].data == []  # send_initial_empty_metrics
    ttfb = [d for f in metrics for d in f.data if isinstance(d, TTFBMetricsData)]
    assert len(ttfb) == 1 and ttfb[0].processor == service.name and ttfb[0].value >= 0
    assert service.metrics.usage_enabled


def test_metrics_off_by_default_sends_no_metrics_frames() -> None:
    class Service(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await self.push_frame(frame, direction)
            if isinstance(frame, TextFrame):
                await self.start_ttfb_metrics()
                await self.stop_ttfb_metrics()

    collector = Collector()
    task = PipelineTask(Pipeline([Service(), collector]))

    async def main() -> None:
        await task.queue_frames([TextFrame(text="1"), EndFrame()])
        await asyncio.wait_for(task.run(), 5)

    asyncio.run(main())
    assert not [f for f in collector.seen if isinstance(f, MetricsFrame)]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"observers": [object()]}, "observers"),
        ({"enable_tracing": True}, "tracing"),
        ({"enable_rtvi": True}, "RTVI"),
        ({"no_such_option": 1}, "no such option"),
    ],
)
def test_pipecat_arguments_without_an_equivalent_are_refused_clearly(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        PipelineTask(Pipeline([]), **kwargs)


def test_empty_observers_and_disabled_options_are_accepted() -> None:
    PipelineTask(Pipeline([]), observers=[], enable_tracing=False, enable_rtvi=False)


def test_heartbeats_are_refused_not_ignored() -> None:
    with pytest.raises(ConfigurationError, match="heartbeat"):
        PipelineParams(enable_heartbeats=True)


def test_idle_timeout_fires_the_event_and_cancels() -> None:
    fired: list[str] = []
    task = PipelineTask(Pipeline([Collector()]), idle_timeout_secs=0.05)

    @task.event_handler("on_idle_timeout")
    async def on_idle(t: PipelineTask) -> None:
        fired.append("idle")

    _run(task)
    assert fired == ["idle"] and task.has_finished()


def test_activity_frames_hold_off_the_idle_timeout() -> None:
    class Chatty(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await self.push_frame(frame, direction)

    chatty = Chatty()
    task = PipelineTask(Pipeline([chatty]), idle_timeout_secs=0.2, cancel_on_idle_timeout=True)

    async def main() -> int:
        runner = asyncio.ensure_future(task.run())
        pushes = 0
        for _ in range(6):  # 0.3 s of activity, every 50 ms: longer than the timeout
            await asyncio.sleep(0.05)
            await chatty.push_frame(UserStartedSpeakingFrame())
            pushes += 1
            assert not runner.done()
        await asyncio.wait_for(runner, 2)
        return pushes

    assert asyncio.run(main()) == 6


def test_interruption_task_frame_sends_an_interruption_down_the_pipeline() -> None:
    class AsksToInterrupt(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await self.push_frame(frame, direction)
            if isinstance(frame, TextFrame):
                await self.push_frame(InterruptionTaskFrame(), FrameDirection.UPSTREAM)

    first, collector = Collector(), Collector()
    task = PipelineTask(Pipeline([first, AsksToInterrupt(), collector]))

    async def main() -> None:
        await task.queue_frames([TextFrame(text="x"), EndFrame()])
        await asyncio.wait_for(task.run(), 5)

    asyncio.run(main())
    assert any(isinstance(f, InterruptionFrame) for f in first.seen)
    assert any(isinstance(f, InterruptionFrame) for f in collector.seen)


def test_worker_runner_is_the_runner_and_force_gc_collects(monkeypatch: pytest.MonkeyPatch) -> None:
    assert WorkerRunner is PipelineRunner
    collected: list[int] = []
    real = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *a: collected.append(1) or real(*a))
    task = PipelineTask(Pipeline([Collector()]))

    async def main() -> None:
        await task.queue_frame(EndFrame())
        await WorkerRunner(handle_sigint=False, handle_sigterm=False, force_gc=True).run(task)

    asyncio.run(main())
    assert collected


@pytest.mark.parametrize(
    ("params", "words"),
    [({"heartbeats_period_secs": 1.0}, "heartbeat"), ({"interruption_strategies": [object()]}, "barge-in")],
)
def test_pipecat_only_params_are_refused_with_a_reason(params: dict, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        PipelineParams(**params)


def test_turn_tracking_is_always_on_and_turning_it_off_is_refused() -> None:
    PipelineTask(Pipeline([]), enable_turn_tracking=True)
    with pytest.raises(ConfigurationError, match="always tracks turns"):
        PipelineTask(Pipeline([]), enable_turn_tracking=False)
