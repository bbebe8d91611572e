"""Wires metrics, tracing, the drain and the call registry into ``create_app``, in one call.

Why a separate module: ``app.py`` is the call flow; what watches the calls (``/metrics``,
spans, ``/readyz``, SIGTERM) is set up here so the call flow only says "a call began" and
"a call ended" (``CallRegistry``) and checks ``drain.draining`` before taking a new one.
"""

from __future__ import annotations

from fastapi import FastAPI, Response

from phonewire.exceptions import ConfigurationError
from phonewire.server.config import ServerConfig
from phonewire.server.drain import DrainController, install_drain
from phonewire.server.fallback import FALLBACK_MODES
from phonewire.server.json_logs import LOG_FORMATS
from phonewire.server.lifecycle import CallHook, CallRegistry, MetricsHook
from phonewire.server.metrics import Metrics

__all__ = ["install_observability"]


def check_config(config: ServerConfig) -> None:
    if config.drain_webhook_fallback not in FALLBACK_MODES:
        raise ConfigurationError(f"drain_webhook_fallback={config.drain_webhook_fallback!r}: use {FALLBACK_MODES}")
    if config.drain_webhook_fallback == "redirect" and not config.drain_fallback_url:
        raise ConfigurationError("drain_webhook_fallback='redirect' needs drain_fallback_url")
    if config.log_format not in LOG_FORMATS:
        raise ConfigurationError(f"log_format={config.log_format!r}: use one of {LOG_FORMATS}")
    if config.drain_timeout_secs < 0 or config.drain_goodbye_timeout_secs < 0:
        raise ConfigurationError("drain_timeout_secs and drain_goodbye_timeout_secs must be >= 0")


def install_observability(app: FastAPI, config: ServerConfig, metrics: Metrics) -> tuple[CallRegistry, DrainController]:
    """``/metrics``, ``/readyz``, ``/livez``, the drain, and the hooks every call runs through."""
    check_config(config)
    hooks: list[CallHook] = [MetricsHook(metrics)]
    if config.tracing:
        try:
            from phonewire.server.tracing import CallTracer
        except ImportError as exc:
            raise ConfigurationError(f"tracing=True needs: pip install 'phonewire[tracing]' ({exc})") from None
        hooks.append(CallTracer(config.tracer_provider))
    calls = CallRegistry(hooks)
    app.state.calls = calls
    drain = install_drain(app, config, calls, metrics)

    async def prometheus() -> Response:
        metrics.sync_process_tallies(getattr(app.state, "webhook_refusals", None))
        return Response(metrics.render(), media_type=metrics.content_type)

    app.add_api_route("/metrics", prometheus, methods=["GET"], include_in_schema=False)
    return calls, drain
