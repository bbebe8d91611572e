"""Measurements processors report, as Pipecat's MetricsFrame carries them.

``TurnLatencyMetricsData`` is phonewire's own: one caller turn's latency as a breakdown
(caller stopped -> transcript -> first token -> first TTS byte -> first packet sent ->
first packet heard), so the answer to "why was that slow" is a number per stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from phonewire.frames.core import SystemFrame

__all__ = [
    "LatencyStageFrame",
    "LLMTokenUsage",
    "LLMUsageMetricsData",
    "MetricsData",
    "MetricsFrame",
    "ProcessingMetricsData",
    "TTFBMetricsData",
    "TTSUsageMetricsData",
    "TurnLatencyMetricsData",
]


@dataclass(slots=True, kw_only=True)
class MetricsData:
    processor: str
    model: str | None = None


@dataclass(slots=True, kw_only=True)
class TTFBMetricsData(MetricsData):
    """Seconds from the request to the service's first useful byte (token, audio, text)."""

    value: float


@dataclass(slots=True, kw_only=True)
class ProcessingMetricsData(MetricsData):
    """Seconds from the request to the service's last byte."""

    value: float


@dataclass(slots=True, kw_only=True)
class LLMTokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cache_read_input_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass(slots=True, kw_only=True)
class LLMUsageMetricsData(MetricsData):
    value: LLMTokenUsage


@dataclass(slots=True, kw_only=True)
class TTSUsageMetricsData(MetricsData):
    """Characters sent to the TTS (what TTS services bill)."""

    value: int


@dataclass(slots=True, kw_only=True)
class TurnLatencyMetricsData(MetricsData):
    """One caller turn, stage by stage. ``stages`` maps a stage name to seconds since the
    caller stopped speaking (``transcript``, ``llm_first_token``, ``tts_first_byte``,
    ``first_audio_sent``, ``first_audio_heard``); a stage that did not happen is absent."""

    turn: int
    stages: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class MetricsFrame(SystemFrame):
    data: list[MetricsData] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class LatencyStageFrame(SystemFrame):
    """A stage of the current caller turn was reached (phonewire's own, always on).

    Services push it downstream at the moments that make up a turn's latency - ``transcript``
    (the STT's final text), ``turn_end`` (the user aggregator ran the LLM), ``llm_first_token``,
    ``tts_first_byte`` - and the output transport, which adds ``first_audio_sent`` and
    ``first_audio_heard`` itself, turns them into one ``TurnLatencyMetricsData`` per turn.
    ``at`` is ``time.monotonic()`` when the stage was reached.
    """

    stage: str
    at: float
    processor: str = ""
