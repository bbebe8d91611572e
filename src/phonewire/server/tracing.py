"""OpenTelemetry spans per call, per turn and per service request (``phonewire[tracing]``).

A call is a ``phonewire.call`` span (SERVER kind) from the bot's start to its end; each
answered caller turn is a ``phonewire.turn`` child from the moment the caller stopped
speaking to the first bot audio heard; each turn has ``phonewire.stt`` / ``phonewire.llm``
/ ``phonewire.tts`` children: from the services' measured time to first byte (request ->
first byte, ``service`` attribute) where a service measured one, else from the turn's stages
(VAD stop -> transcript, turn end -> first token, first token -> first TTS byte). Every span
carries ``phonewire.call_id`` and ``phonewire.provider``.

Why built from the turn records instead of live around each request: the turn's clock and
stages already exist for the latency breakdown, so tracing adds no code to the frame path
and none to the services; spans are created with explicit start and end times when a turn
completes. Off by default and then free: this module (and ``opentelemetry``) is imported
only when ``ServerConfig.tracing`` is on, and nothing checks a flag per frame.

Spans go to the global tracer provider (set it up as your OpenTelemetry distro does) or to
``ServerConfig.tracer_provider``; ``phonewire serve --tracing`` installs an SDK provider
(``configure_from_env``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from phonewire.server.lifecycle import ActiveCall
from phonewire.server.metrics import service_label

__all__ = ["CallTracer", "configure_from_env"]

logger = logging.getLogger("phonewire.server")

#: TTFB measurements kept per call until a turn claims them (a bot with no turns drops the oldest).
MAX_PENDING_TTFB = 64
#: Service spans from stages, when no service measured its TTFB in the turn: (kind, start, end).
STAGE_SPANS = (
    ("stt", "vad_stop", "transcript"),
    ("llm", "turn_end", "llm_first_token"),
    ("tts", "llm_first_token", "tts_first_byte"),
)
_KEY = "tracing"


def service_kind(processor: str) -> str:
    upper = processor.upper()
    return next((k.lower() for k in ("STT", "LLM", "TTS") if k in upper), "service")


class CallTracer:
    def __init__(self, tracer_provider: Any = None) -> None:
        self.tracer = trace.get_tracer("phonewire", tracer_provider=tracer_provider)

    def call_started(self, call: ActiveCall) -> None:
        attributes = _ids(call)
        attributes["phonewire.stream_id"] = call.info.stream_id or "-"
        span = self.tracer.start_span(
            "phonewire.call", kind=SpanKind.SERVER, attributes=attributes, start_time=call.started_ns
        )
        call.data[_KEY] = (span, [])

    def service_ttfb(self, call: ActiveCall, processor: str, seconds: float, at: float) -> None:
        pending = call.data[_KEY][1]
        pending.append((processor, seconds, at))
        if len(pending) > MAX_PENDING_TTFB:
            del pending[0]

    def turn_completed(self, call: ActiveCall, turn: Any) -> None:
        span, pending = call.data[_KEY]
        start = turn.caller_stopped_at
        end = start + max(turn.stages.values(), default=0.0)
        attributes: dict[str, Any] = {**_ids(call), "phonewire.turn": turn.index}
        attributes["phonewire.turn.interrupted"] = bool(turn.interrupted)
        if turn.heard_source:
            attributes["phonewire.turn.heard_by"] = turn.heard_source
        for stage, secs in turn.stages.items():
            attributes[f"phonewire.turn.{stage}_ms"] = round(1000 * secs, 1)
        parent = trace.set_span_in_context(span)
        turn_span = self.tracer.start_span("phonewire.turn", context=parent, attributes=attributes,
                                           start_time=call.wall_ns(start))  # fmt: skip
        inside = trace.set_span_in_context(turn_span)
        covered: set[str] = set()
        for processor, seconds, at in [p for p in pending if start <= p[2] <= end + 0.001]:
            kind = service_kind(processor)
            covered.add(kind)
            service = {**_ids(call), "phonewire.service": service_label(processor), "phonewire.ttfb_ms": 1000 * seconds}
            child = self.tracer.start_span(f"phonewire.{kind}", context=inside, attributes=service,
                                           start_time=call.wall_ns(at - seconds))  # fmt: skip
            child.end(end_time=call.wall_ns(at))
        pending[:] = [p for p in pending if p[2] > end + 0.001]
        for kind, first, last in STAGE_SPANS:
            if kind in covered or first not in turn.stages or last not in turn.stages:
                continue
            child = self.tracer.start_span(f"phonewire.{kind}", context=inside, attributes=_ids(call),
                                           start_time=call.wall_ns(start + turn.stages[first]))  # fmt: skip
            child.end(end_time=call.wall_ns(start + max(turn.stages[first], turn.stages[last])))
        turn_span.end(end_time=call.wall_ns(end))

    def call_ended(self, call: ActiveCall) -> None:
        span = call.data[_KEY][0]
        stats = call.transport.stats
        span.set_attribute("phonewire.outcome", call.outcome or "completed")
        span.set_attribute("phonewire.turns", len(stats.turns))
        span.set_attribute("phonewire.audio_in_s", stats.audio_in_ms / 1000)
        span.set_attribute("phonewire.audio_out_s", stats.audio_out_ms / 1000)
        span.set_attribute("phonewire.hangup", stats.hangup or "none")
        if call.outcome == "bot_error":
            span.set_status(Status(StatusCode.ERROR, "bot raised"))
        span.end()


def _ids(call: ActiveCall) -> dict[str, Any]:
    return {"phonewire.call_id": call.info.call_id or "-", "phonewire.provider": call.info.provider}


def configure_from_env() -> Any:
    """An SDK tracer provider for ``phonewire serve --tracing``, set as the global one.

    ``OTEL_TRACES_EXPORTER``: ``otlp`` (the default; needs ``opentelemetry-exporter-otlp-proto-http``,
    configured by the standard ``OTEL_EXPORTER_OTLP_*`` variables) or ``console``.
    ``OTEL_SERVICE_NAME`` names the service (default ``phonewire``).
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    from phonewire.exceptions import ConfigurationError

    kind = os.environ.get("OTEL_TRACES_EXPORTER", "otlp")
    exporter: Any
    if kind == "console":
        exporter = ConsoleSpanExporter()
    elif kind == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ConfigurationError(
                "--tracing with OTEL_TRACES_EXPORTER=otlp needs: pip install opentelemetry-exporter-otlp-proto-http"
            ) from None
        exporter = OTLPSpanExporter()
    else:
        raise ConfigurationError(f"OTEL_TRACES_EXPORTER={kind!r}: phonewire serve supports 'otlp' and 'console'")
    provider = TracerProvider(
        resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "phonewire")})
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    logger.info("= tracing on: spans to %s", kind)
    return provider
