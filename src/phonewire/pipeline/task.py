"""PipelineTask: runs one pipeline from StartFrame to its end, with every wait bounded."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from phonewire import logsafe
from phonewire.events import EventEmitter
from phonewire.exceptions import ConfigurationError
from phonewire.frames import (
    BotSpeakingFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    CancelTaskFrame,
    EndFrame,
    EndTaskFrame,
    ErrorFrame,
    Frame,
    FrameDirection,
    InputDTMFFrame,
    InterruptionFrame,
    InterruptionTaskFrame,
    MetricsFrame,
    StartFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from phonewire.pipeline.pipeline import _Edge
from phonewire.processors.frame_processor import FrameProcessor, FrameProcessorSetup

__all__ = ["PipelineParams", "PipelineTask", "PipelineWorker"]

logger = logging.getLogger("phonewire.pipeline")


@dataclass(slots=True)
class PipelineParams:
    """Pipeline-wide settings.

    Sample rates of None mean "whatever the transport's wire rate is": for an 8 kHz phone
    call the pipeline then runs at 8 kHz with no resampling at all, the cheapest and
    lowest-latency choice. Set 16000 when your STT wants it.
    """

    audio_in_sample_rate: int | None = None
    audio_out_sample_rate: int | None = None
    allow_interruptions: bool = True
    #: TTFB and processing-time MetricsFrames from the services.
    enable_metrics: bool = False
    #: Token and character usage MetricsFrames (needs enable_metrics too, as in Pipecat).
    enable_usage_metrics: bool = False
    #: Report each service's TTFB for its first request only.
    report_only_initial_ttfb: bool = False
    #: Push one empty MetricsFrame right after the StartFrame, as Pipecat does, so processors
    #: downstream learn that metrics are on before the first measurement.
    send_initial_empty_metrics: bool = True
    #: Pipecat's heartbeat frames. phonewire has none: True is refused (see __post_init__).
    enable_heartbeats: bool = False
    #: Metadata copied onto the StartFrame.
    start_metadata: dict[str, Any] | None = None
    #: Pipecat's heartbeat period and interruption strategies: refused when set (see __post_init__).
    heartbeats_period_secs: float | None = None
    interruption_strategies: list[Any] | None = None
    #: How long a CancelFrame may take to reach the end of the pipeline.
    cancel_timeout_secs: float = 5.0
    #: Safety net for a graceful end: the transport bounds its own audio drain, this
    #: bounds everything else (a processor stuck on a dead service).
    end_timeout_secs: float = 60.0
    #: Bounds event-handler cleanup; the whole pipeline's cleanup gets twice this.
    cleanup_timeout_secs: float = 5.0

    def __post_init__(self) -> None:
        if self.interruption_strategies:
            raise ConfigurationError(
                "PipelineParams(interruption_strategies=...): phonewire's barge-in policy lives in the transport"
                " (TransportParams.interruption_min_speech_secs) and the turn strategies of the user aggregator"
            )
        if self.enable_heartbeats or self.heartbeats_period_secs is not None:
            raise ConfigurationError(
                "PipelineParams(enable_heartbeats=True): phonewire sends no heartbeat frames; the transport's"
                " watchdog and the task's idle_timeout_secs detect a stuck call instead"
            )


#: Frames that show the conversation is alive: each resets the idle timer.
_ACTIVITY_FRAMES = (
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    BotSpeakingFrame,
    InputDTMFFrame,
)

#: Pipecat arguments with no phonewire equivalent, and why: refused, never ignored.
_REFUSED_TASK_ARGS = {
    "observers": "observers are not supported; read frames in a FrameProcessor of your own",
    "enable_tracing": (
        "tracing is per call, not per task: ServerConfig(tracing=True) / phonewire serve --tracing"
        " (spans per call and turn with service children; docs/deployment.md, Tracing)"
    ),
    "enable_rtvi": "RTVI is a WebRTC client protocol; phone calls have no RTVI client",
    "rtvi_processor": "RTVI is a WebRTC client protocol; phone calls have no RTVI client",
}


class PipelineTask(EventEmitter):
    """Owns a pipeline run. ``queue_frame(s)`` feed it, ``end()`` finishes it gracefully
    (queued audio plays out), ``cancel()`` stops it now. Neither waits: they return at once
    so they are safe to call from event handlers that the pipeline's own cleanup awaits.

    Events: ``on_pipeline_started(task)``, ``on_pipeline_finished(task)``,
    ``on_pipeline_error(task, error_frame)``, ``on_idle_timeout(task)``.

    ``idle_timeout_secs`` (None: off, as phonewire's transport already ends dead calls): no
    sign of conversation (speaking frames, DTMF) for that long fires ``on_idle_timeout`` and,
    with ``cancel_on_idle_timeout``, cancels the task. Pipecat arguments phonewire has no
    equivalent for are refused with a ConfigurationError saying why, never ignored.
    """

    def __init__(
        self,
        pipeline: FrameProcessor,
        params: PipelineParams | None = None,
        *,
        idle_timeout_secs: float | None = None,
        cancel_on_idle_timeout: bool = True,
        conversation_id: str | None = None,
        check_dangling_tasks: bool = True,
        enable_turn_tracking: bool = True,
        **unsupported: Any,
    ) -> None:
        super().__init__()
        logsafe.install()  # peer values logged by any phonewire.* logger stay on one line
        _refuse(unsupported)
        if not enable_turn_tracking:
            raise ConfigurationError(
                "PipelineTask(enable_turn_tracking=False): phonewire always tracks turns (the per-turn latency"
                " breakdown in transport.stats.turns costs a few frames per turn)"
            )
        self.pipeline = pipeline
        self.params = params or PipelineParams()
        self.idle_timeout_secs = idle_timeout_secs
        self.cancel_on_idle_timeout = cancel_on_idle_timeout
        self.conversation_id = conversation_id
        self._last_activity = time.monotonic()
        self._idle_task: asyncio.Task[None] | None = None
        self._source = _Edge(self._from_pipeline_upstream, name="PipelineTask::source")
        self._sink = _Edge(self._from_pipeline_downstream, name="PipelineTask::sink")
        self._source.link(pipeline)
        pipeline.link(self._sink)
        self._started = False
        self._pending: list[Frame] = []
        self._finished = asyncio.Event()
        self._cancel_requested = asyncio.Event()
        self._end_deadline: float | None = None
        self._ran = False
        self._done = False
        for name in ("on_pipeline_started", "on_pipeline_finished", "on_pipeline_error", "on_idle_timeout"):
            self._register_event_handler(name)

    # --- control -----------------------------------------------------------------------

    async def queue_frame(self, frame: Frame) -> None:
        if isinstance(frame, CancelFrame):
            await self.cancel()
            return
        if isinstance(frame, EndFrame):
            self._end_deadline = time.monotonic() + self.params.end_timeout_secs
        if not self._started:
            self._pending.append(frame)
            return
        await self._source.push_frame(frame, FrameDirection.DOWNSTREAM)

    async def queue_frames(self, frames: Iterable[Frame]) -> None:
        for frame in frames:
            await self.queue_frame(frame)

    async def end(self, reason: str | None = None) -> None:
        """Finish gracefully: an EndFrame follows everything already queued."""
        await self.queue_frame(EndFrame(reason=reason))

    stop_when_done = end

    async def cancel(self, reason: str | None = None) -> None:
        """Stop now. Returns at once; ``run()`` finishes within ``cancel_timeout_secs``."""
        self._cancel_reason = reason
        self._cancel_requested.set()

    def has_finished(self) -> bool:
        return self._done

    # --- running -----------------------------------------------------------------------

    async def run(self) -> None:
        if self._ran:
            raise RuntimeError("a PipelineTask runs once; build a new one per call")
        self._ran = True
        try:
            await self.pipeline.setup(FrameProcessorSetup(clock=time.monotonic))
            await self._start()
            await self._wait_for_end()
        finally:
            await self._cleanup()

    async def _start(self) -> None:
        p = self.params
        start = StartFrame(
            audio_in_sample_rate=p.audio_in_sample_rate,
            audio_out_sample_rate=p.audio_out_sample_rate,
            allow_interruptions=p.allow_interruptions,
            enable_metrics=p.enable_metrics,
            enable_usage_metrics=p.enable_usage_metrics,
            report_only_initial_ttfb=p.report_only_initial_ttfb,
            metadata=dict(p.start_metadata) if p.start_metadata else None,
        )
        await self._source.push_frame(start, FrameDirection.DOWNSTREAM)
        if p.enable_metrics and p.send_initial_empty_metrics:
            await self._source.push_frame(MetricsFrame(), FrameDirection.DOWNSTREAM)
        self._started = True
        if self.idle_timeout_secs is not None:
            self._idle_task = asyncio.get_running_loop().create_task(self._idle_watch(), name="PipelineTask:idle")
        self._call_event_handler("on_pipeline_started")
        pending, self._pending = self._pending, []
        for frame in pending:
            await self._source.push_frame(frame, FrameDirection.DOWNSTREAM)

    async def _wait_for_end(self) -> None:
        finished = asyncio.ensure_future(self._finished.wait())
        cancel = asyncio.ensure_future(self._cancel_requested.wait())
        try:
            while not self._finished.is_set():
                timeout = None if self._end_deadline is None else max(0.0, self._end_deadline - time.monotonic())
                await asyncio.wait({finished, cancel}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if self._finished.is_set():
                    break
                if not self._cancel_requested.is_set():
                    if self._end_deadline is None or time.monotonic() < self._end_deadline:
                        continue
                    logger.warning("- pipeline did not end within %.1fs: cancelling", self.params.end_timeout_secs)
                await self._send_cancel()
                break
        finally:
            for f in (finished, cancel):
                f.cancel()

    async def _send_cancel(self) -> None:
        reason = getattr(self, "_cancel_reason", None)
        try:
            async with asyncio.timeout(self.params.cancel_timeout_secs):
                await self._source.push_frame(CancelFrame(reason=reason), FrameDirection.DOWNSTREAM)
                await self._finished.wait()
        except TimeoutError:
            logger.error("- CancelFrame did not reach the end within %.1fs", self.params.cancel_timeout_secs)

    async def _idle_watch(self) -> None:
        assert self.idle_timeout_secs is not None
        while True:
            remaining = self._last_activity + self.idle_timeout_secs - time.monotonic()
            if remaining > 0:
                await asyncio.sleep(remaining)
                continue
            logger.warning("- no conversation for %.0fs: idle timeout", self.idle_timeout_secs)
            self._call_event_handler("on_idle_timeout")
            if self.cancel_on_idle_timeout:
                await self.cancel("idle timeout")
            return

    async def _cleanup(self) -> None:
        idle, self._idle_task = self._idle_task, None
        if idle is not None:
            idle.cancel()
            await asyncio.gather(idle, return_exceptions=True)
        try:
            async with asyncio.timeout(self.params.cleanup_timeout_secs * 2):
                await self.pipeline.cleanup()
        except TimeoutError:
            logger.error("- pipeline cleanup exceeded %.1fs", self.params.cleanup_timeout_secs * 2)
        self._done = True
        self._call_event_handler("on_pipeline_finished")
        await self.cleanup_event_handlers(self.params.cleanup_timeout_secs)

    # --- frames leaving the pipeline ---------------------------------------------------

    async def _from_pipeline_downstream(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, _ACTIVITY_FRAMES):
            self._last_activity = time.monotonic()
        elif isinstance(frame, EndFrame | CancelFrame):
            self._finished.set()

    async def _from_pipeline_upstream(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, _ACTIVITY_FRAMES):
            self._last_activity = time.monotonic()
        elif isinstance(frame, InterruptionTaskFrame):
            await self._source.push_frame(InterruptionFrame(), FrameDirection.DOWNSTREAM)
        elif isinstance(frame, EndTaskFrame):
            await self.end(frame.reason)
        elif isinstance(frame, CancelTaskFrame):
            await self.cancel(frame.reason)
        elif isinstance(frame, ErrorFrame):
            self._call_event_handler("on_pipeline_error", frame)
            if frame.fatal:
                logger.error("! fatal error, cancelling: %s", frame.error)
                await self.cancel(frame.error)


def _refuse(unsupported: dict[str, Any]) -> None:
    for name, value in unsupported.items():
        if name in _REFUSED_TASK_ARGS and not value:
            continue  # observers=[] / enable_tracing=False ask for nothing
        why = _REFUSED_TASK_ARGS.get(name, "phonewire has no such option")
        raise ConfigurationError(f"PipelineTask({name}=...): {why}")


#: Pipecat 1.14's name for the task.
PipelineWorker = PipelineTask
