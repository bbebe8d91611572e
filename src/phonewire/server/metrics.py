"""The server's metrics on prometheus-client, summed across ``--workers``.

Why multiprocess mode: under ``phonewire serve --workers N`` each scrape of ``/metrics`` is
answered by whichever worker accepted the connection, so per-process numbers were one random
worker's. ``phonewire serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` to a fresh directory per run
(``cli.py``); every worker's values then live in memory-mapped files there and a scrape reads
them all (``MultiProcessCollector``): counters and histograms summed, live gauges summed over
living workers (``livesum``), and ``phonewire_worker_active_calls`` per pid (``liveall``). A
worker's live-gauge files are removed when it exits or, if it died, at the next scrape.
Without the variable (``create_app`` under your own uvicorn, one process, or tests) the
app's own registry is exposed.

Nothing here runs per packet: calls are counted when they start and end, turns when they
complete, send-lead samples and services' TTFBs as the call's hooks hand them over.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter as Tally
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from phonewire.transports.call_state import HangupSkip
from phonewire.transports.stats import TransportStats

__all__ = ["MULTIPROC_ENV", "Metrics", "multiprocess_dir"]

logger = logging.getLogger("phonewire.server")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds since the caller stopped speaking (the turn stages of ``turn_latency.py``).
TURN_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
TTFB_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)
ADDED_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
#: 0 and below: the caller's buffer had run dry (the bucket ``le="0"`` counts those samples).
LEAD_BUCKETS = (0.0, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.25, 0.5, 1.0)
#: Distinct protocol-error kinds exported per process; the rest are "other" (peers choose them).
MAX_ERROR_KINDS = 32
_NOT_KIND = re.compile(r"[^a-z _-]+")
_SERVICE_SUFFIX = re.compile(r"#\d+$")


def multiprocess_dir() -> str | None:
    """The multiprocess directory, if prometheus-client was imported with it set (its value
    class is chosen at import: a variable set later would silently export nothing)."""
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        return None
    if values.ValueClass is values.MutexValue:
        logger.warning("! %s is set but prometheus_client was imported before it: per-process metrics", MULTIPROC_ENV)
        return None
    return path


def service_label(processor: str) -> str:
    """``OpenAISTTService#3`` -> ``OpenAISTTService``: one series per service, not per call."""
    return _SERVICE_SUFFIX.sub("", processor)[:64]


class _Counted:
    """An int attribute whose increments also go to a prometheus Counter, so ``app.py`` keeps
    its ``metrics.rejected += 1`` and tests can still read the process's own count."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.value, self.metric = f"_n_{name}", f"_c_{name}"

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else getattr(obj, self.value, 0)

    def __set__(self, obj: Any, value: int) -> None:
        delta = value - getattr(obj, self.value, 0)
        setattr(obj, self.value, value)
        if delta > 0:
            getattr(obj, self.metric).inc(delta)


class Metrics:
    rejected = _Counted()
    internal_errors = _Counted()

    def __init__(self) -> None:
        self.multiproc_dir = multiprocess_dir()
        self.registry = r = CollectorRegistry(auto_describe=True)
        self._active = Gauge("phonewire_active_calls", "Calls being served", multiprocess_mode="livesum", registry=r)
        self._worker_active = Gauge(
            "phonewire_worker_active_calls", "Calls per worker process", multiprocess_mode="liveall", registry=r
        )
        self._pending = Gauge(
            "phonewire_pending_handshakes", "Streams not yet identified", multiprocess_mode="livesum", registry=r
        )
        self._draining = Gauge(
            "phonewire_draining", "Processes draining (SIGTERM)", multiprocess_mode="livesum", registry=r
        )
        self._started = Counter("phonewire_calls_started", "Calls started", ["provider"], registry=r)
        self._ended = Counter("phonewire_calls", "Calls ended, by outcome", ["provider", "outcome"], registry=r)
        self._refused = Counter("phonewire_calls_refused", "Streams refused with 1013", ["reason"], registry=r)
        self._c_rejected = Counter("phonewire_streams_rejected", "Streams refused: signature, handshake", registry=r)
        self._bot_errors = Counter("phonewire_bot_errors", "Bots that raised", registry=r)
        self._c_internal_errors = Counter("phonewire_internal_errors", "phonewire bugs caught", registry=r)
        self._protocol = Counter("phonewire_protocol_errors", "Bad peer messages", ["kind"], registry=r)
        self._underruns = Counter("phonewire_underruns", "Mid-utterance gaps in bot audio", registry=r)
        self._hangups = Counter("phonewire_hangups", "Auto hang-ups by outcome", ["outcome"], registry=r)
        self._invalid_ids = Counter("phonewire_hangup_invalid_ids", "Hang-ups refused: malformed id", registry=r)
        self._audio_in = Counter("phonewire_audio_in_seconds", "Caller audio received", registry=r)
        self._audio_out = Counter("phonewire_audio_out_seconds", "Bot audio sent", registry=r)
        self._webhook_refusals = Counter(
            "phonewire_webhook_refusals", "Webhooks refused", ["provider", "reason"], registry=r
        )
        self._http_closed = Counter("phonewire_http_connections_closed", "By the web server", ["reason"], registry=r)
        self._invalid_utf8 = Counter("phonewire_invalid_utf8_frames", "Text frames with bad UTF-8", registry=r)
        self._turn = Histogram(
            "phonewire_turn_latency_seconds", "Turn stages: seconds since the caller stopped", ["stage"],
            buckets=TURN_BUCKETS, registry=r,
        )  # fmt: skip
        self._ttfb = Histogram(
            "phonewire_service_ttfb_seconds", "Service request to first byte", ["service"],
            buckets=TTFB_BUCKETS, registry=r,
        )  # fmt: skip
        self._added = Histogram(
            "phonewire_transport_added_latency_seconds", "TTS first byte to first packet sent", ["direction"],
            buckets=ADDED_BUCKETS, registry=r,
        )  # fmt: skip
        self._lead = Histogram(
            "phonewire_send_lead_seconds", "Bot audio sent ahead of playout (sampled)", buckets=LEAD_BUCKETS, registry=r
        )
        self._active_n = 0
        self.calls = 0
        self.bot_errors = 0
        #: Bad peer messages over this process's calls (the counter sums workers; this is ours).
        self.protocol_errors = 0
        #: Hang-ups of this process's calls by outcome ("done", "failed", ...).
        self.hangups: dict[str, int] = {}
        self.pending = 0
        self.pending_by_client: Tally[str] = Tally()
        self.invalid_hangup_ids = 0
        self._kinds: set[str] = set()
        #: What the process-wide tallies (webhooks, http_protocol, uvicorn log filter) had
        #: when last copied into their counters, by tally id and key.
        self._synced: dict[tuple[int, Any], int] = {}

    # --- live gauges -------------------------------------------------------------------

    @property
    def active(self) -> int:
        return self._active_n

    @active.setter
    def active(self, value: int) -> None:
        self._active_n = value
        self._active.set(value)
        self._worker_active.set(value)

    def set_draining(self, draining: bool) -> None:
        self._draining.set(1 if draining else 0)

    def pending_refusal(self, client: str, total: int, per_client: int) -> str | None:
        """Why one more pending handshake (from ``client``) is refused, or None."""
        if self.pending >= total:
            return f"{self.pending} handshakes pending (max_pending_handshakes)"
        if self.pending_by_client[client] >= per_client:
            return f"{per_client} handshakes pending from one address (max_pending_per_client)"
        return None

    def pending_started(self, client: str) -> None:
        self.pending += 1
        self.pending_by_client[client] += 1
        self._pending.set(self.pending)

    def pending_ended(self, client: str) -> None:
        self.pending -= 1
        self.pending_by_client[client] -= 1
        if self.pending_by_client[client] <= 0:
            del self.pending_by_client[client]  # the tally must not grow with every address seen
        self._pending.set(self.pending)

    # --- events ------------------------------------------------------------------------

    def refuse(self, reason: str) -> None:
        """A stream refused with 1013: ``max_calls``, ``pending_handshakes`` or ``draining``."""
        self._refused.labels(reason).inc()

    @property
    def refused(self) -> float:
        return sum(s.value for m in self._refused.collect() for s in m.samples if s.name.endswith("_total"))

    def call_started(self, provider: str) -> None:
        self.calls += 1
        self._started.labels(provider).inc()

    def call_ended(self, provider: str, outcome: str, stats: TransportStats) -> None:
        """Everything a finished call contributes, in one go."""
        self._ended.labels(provider, outcome).inc()
        if outcome == "bot_error":
            self.bot_errors += 1
            self._bot_errors.inc()
        if stats.internal_errors:
            self.internal_errors += stats.internal_errors
        for key, count in stats.protocol_errors.items():
            self._protocol.labels(self._error_kind(key)).inc(count)
            self.protocol_errors += count
        if stats.underruns:
            self._underruns.inc(stats.underruns)
        self._audio_in.inc(stats.audio_in_ms / 1000)
        self._audio_out.inc(stats.audio_out_ms / 1000)
        # One bounded label: "skipped" (why is stats.hangup_skip), else the outcome's value.
        hangup = "skipped" if stats.hangup_skip is not None else (stats.hangup or "none")[:40]
        self._hangups.labels(hangup).inc()
        if stats.hangup:
            self.hangups[hangup] = self.hangups.get(hangup, 0) + 1
        if stats.hangup_skip is HangupSkip.INVALID_ID:
            self.invalid_hangup_ids += 1
            self._invalid_ids.inc()
        for lead in stats.send_lead_samples:
            self._lead.observe(lead)

    def turn_completed(self, stages: dict[str, float]) -> None:
        for stage, secs in stages.items():
            self._turn.labels(stage).observe(secs)
        sent, tts = stages.get("first_audio_sent"), stages.get("tts_first_byte")
        if sent is not None and tts is not None:
            self._added.labels("out").observe(max(0.0, sent - tts))

    def service_ttfb(self, processor: str, seconds: float) -> None:
        self._ttfb.labels(service_label(processor)).observe(seconds)

    def _error_kind(self, key: str) -> str:
        kind = _NOT_KIND.sub("", key.lower().split("'")[0].split('"')[0]).strip()[:40] or "other"
        if kind not in self._kinds:
            if len(self._kinds) >= MAX_ERROR_KINDS:
                return "other"
            self._kinds.add(kind)
        return kind

    # --- exposition --------------------------------------------------------------------

    def sync_process_tallies(self, webhook_refusals: Tally[Any] | None = None) -> None:
        """Copy what the process-wide tallies gained since last time into their counters
        (webhook refusals, the web server's refusals and condensed log events). Called at
        each scrape and every few seconds by the app's lifespan, never per request."""
        from phonewire.server.http_protocol import HTTP_REFUSALS
        from phonewire.server.web_server import UVICORN_LOG_EVENTS

        self._copy(HTTP_REFUSALS, lambda key: self._http_closed.labels(key))
        self._copy(UVICORN_LOG_EVENTS, lambda key: self._invalid_utf8 if key == "invalid_utf8" else None)
        if webhook_refusals is not None:
            self._copy(webhook_refusals, lambda key: self._webhook_refusals.labels(key[0], key[1][:80]))

    def _copy(self, tally: Tally[Any], counter_for: Any) -> None:
        for key, count in list(tally.items()):
            seen = self._synced.get((id(tally), key), 0)
            counter = counter_for(key) if count > seen else None
            if counter is not None:
                counter.inc(count - seen)
                self._synced[(id(tally), key)] = count

    def render(self) -> bytes:
        """The Prometheus text exposition: all workers' values in multiprocess mode."""
        if self.multiproc_dir is None:
            return generate_latest(self.registry)
        _mark_dead_workers(self.multiproc_dir)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiproc_dir)
        return generate_latest(registry)

    content_type = CONTENT_TYPE_LATEST

    def process_exited(self) -> None:
        """This worker is going away: its live gauges must stop counting (lifespan shutdown)."""
        if self.multiproc_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), self.multiproc_dir)


def _mark_dead_workers(path: str) -> None:
    """A worker killed without its lifespan shutdown (OOM, SIGKILL) leaves live-gauge files;
    drop those whose pid is gone so active calls are not counted twice after a restart."""
    pids: set[int] = set()
    for name in os.listdir(path):
        if name.startswith("gauge_live") and name.endswith(".db"):
            pid = name.rsplit("_", 1)[-1][:-3]
            if pid.isdigit():
                pids.add(int(pid))
    for worker in pids:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(worker, path)
        except PermissionError:
            pass  # alive, someone else's
