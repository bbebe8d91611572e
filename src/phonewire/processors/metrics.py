"""Per-processor metrics: TTFB, processing time and usage, as Pipecat reports them.

The StartFrame says what is wanted (``enable_metrics``, ``enable_usage_metrics``,
``report_only_initial_ttfb``); every method is a cheap no-op otherwise, so services call
them unconditionally. Results travel as ``MetricsFrame``s downstream, where any processor
after the service (one of the user's, or the assistant aggregator) can read them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from phonewire.frames import (
    LLMTokenUsage,
    LLMUsageMetricsData,
    MetricsFrame,
    ProcessingMetricsData,
    StartFrame,
    TTFBMetricsData,
    TTSUsageMetricsData,
)

__all__ = ["TTFB_SINK", "FrameProcessorMetrics"]

#: Told of every TTFB measured in a call's tasks, MetricsFrames on or off: ``(processor, secs)``.
#: Why a context variable: the server (``phonewire.server.lifecycle``) cannot reach a bot's
#: processors, but every task the bot's pipeline starts inherits the call's context.
TTFB_SINK: ContextVar[Callable[[str, float], None] | None] = ContextVar("phonewire_ttfb_sink", default=None)


class FrameProcessorMetrics:
    def __init__(self, processor: str) -> None:
        self.processor = processor
        self.model: str | None = None
        self.enabled = False
        self.usage_enabled = False
        self.only_initial_ttfb = False
        self._ttfb_start: float | None = None
        self._ttfb_reported = False
        self._processing_start: float | None = None
        #: The last values measured, for tests and the per-turn breakdown.
        self.last_ttfb: float | None = None
        self.last_processing: float | None = None

    def configure(self, start: StartFrame) -> None:
        self.enabled = start.enable_metrics
        self.usage_enabled = start.enable_usage_metrics
        self.only_initial_ttfb = start.report_only_initial_ttfb

    def start_ttfb(self) -> None:
        if self.only_initial_ttfb and self._ttfb_reported:
            return
        self._ttfb_start = time.monotonic()

    def stop_ttfb(self) -> MetricsFrame | None:
        if self._ttfb_start is None:
            return None
        self.last_ttfb = time.monotonic() - self._ttfb_start
        self._ttfb_start = None
        self._ttfb_reported = True
        sink = TTFB_SINK.get()
        if sink is not None:
            sink(self.processor, self.last_ttfb)
        if not self.enabled:
            return None
        return MetricsFrame(data=[TTFBMetricsData(processor=self.processor, model=self.model, value=self.last_ttfb)])

    def start_processing(self) -> None:
        self._processing_start = time.monotonic()

    def stop_processing(self) -> MetricsFrame | None:
        if self._processing_start is None:
            return None
        self.last_processing = time.monotonic() - self._processing_start
        self._processing_start = None
        if not self.enabled:
            return None
        data = ProcessingMetricsData(processor=self.processor, model=self.model, value=self.last_processing)
        return MetricsFrame(data=[data])

    def llm_usage(self, tokens: Any) -> MetricsFrame | None:
        if not (self.enabled and self.usage_enabled):
            return None
        usage = tokens if isinstance(tokens, LLMTokenUsage) else LLMTokenUsage(**dict(tokens))
        return MetricsFrame(data=[LLMUsageMetricsData(processor=self.processor, model=self.model, value=usage)])

    def tts_usage(self, text: str) -> MetricsFrame | None:
        if not (self.enabled and self.usage_enabled):
            return None
        return MetricsFrame(data=[TTSUsageMetricsData(processor=self.processor, model=self.model, value=len(text))])
