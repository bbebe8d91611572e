"""Recording wired into the server: ``RecordingConfig``, the per-transport tap, the call hook.

Why a hook: ``CallRegistry`` already tells every observer when a call starts and ends
(``server/lifecycle.py``), so recording server-wide is one more ``CallHook``; a bot that
records only some calls calls ``transport.start_recording()``. The transports call the tap
(``transport.recorder``) with each caller packet received and each bot packet sent - one
``is not None`` check per packet when recording is off - and with each clear.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from phonewire.audio.resample import RateConverter
from phonewire.exceptions import ConfigurationError
from phonewire.processors.aggregators.llm_response_universal import TURN_OBSERVER
from phonewire.recording.store import LocalDirectoryStore, RecordingStore
from phonewire.recording.timeline import WINDOW_SECS, CallRecording, pcm_for_recording
from phonewire.recording.writer import DEFAULT_QUEUE_CHUNKS, RecordingWriter

__all__ = ["RecordingConfig", "RecordingHook", "RecordingTap", "start_recording"]


@dataclass(kw_only=True)
class RecordingConfig:
    #: A local directory for ``<provider>-<call id>-<time>.wav`` and ``.json`` (or ``store``).
    dir: str | os.PathLike[str] | None = None
    #: Any ``RecordingStore``; overrides ``dir``.
    store: RecordingStore | None = None
    #: Record every call (True) or only those whose bot calls ``transport.start_recording()``.
    all_calls: bool = True
    #: Audio chunks (~1 s each, all calls together) waiting for the disk before chunks drop.
    max_queue_chunks: int = DEFAULT_QUEUE_CHUNKS
    window_secs: float = WINDOW_SECS
    _writer: RecordingWriter | None = field(default=None, repr=False)

    def resolved_store(self) -> RecordingStore:
        if self.store is not None:
            return self.store
        if self.dir is None:
            raise ConfigurationError("RecordingConfig needs dir or store")
        return LocalDirectoryStore(self.dir)

    @property
    def writer(self) -> RecordingWriter:
        if self._writer is None:
            self._writer = RecordingWriter(self.max_queue_chunks)
        return self._writer


class RecordingTap:
    """What the transports call: wire audio in, PCM16 at the caller's rate on the timeline."""

    def __init__(self, transport: Any, recording: CallRecording, name: str) -> None:
        self._t = transport
        self.recording = recording
        self.name = name
        self.started_wall = time.time()
        self._in = RateConverter(recording.rate)
        self._out = RateConverter(recording.rate)
        self._last_learned = 0.0
        self._best: float | None = None
        self._packet_secs = 0.02

    def caller(self, pcm: bytes, rate: int, encoding: str = "l16") -> None:
        data = pcm_for_recording(pcm, encoding, rate, self.recording.rate, self._in.convert)
        self.recording.caller(data, self._t.clock())

    def bot(self, data: bytes, rate: int, now: float, latency: float, encoding: str = "l16") -> None:
        pcm = pcm_for_recording(data, encoding, rate, self.recording.rate, self._out.convert)
        self._packet_secs = len(pcm) / (2 * self.recording.rate)
        self.recording.bot(pcm, now, self._latency(latency))

    def cut(self, latency: float) -> None:
        self.recording.cut(self._t.clock(), self._latency(latency))

    def _latency(self, learned: float) -> float:
        """The playout latency, as the smallest the tracker has learned: an ack can only be
        late (a provider echoes marks when it gets round to it), never early, so the minimum
        is the estimate with the least echo jitter in it. Providers echo on their packet clock,
        so an echo is up to one packet late: half a packet is taken off, which centres the
        error (within half a packet either way instead of up to a whole one late)."""
        if learned != self._last_learned:
            self._last_learned = learned
            self._best = learned if self._best is None else min(self._best, learned)
        return max(0.0, (self._best or 0.0) - self._packet_secs / 2)

    def note(self, role: str, text: str) -> None:
        self.recording.note(role, text, self._t.clock())

    def resumed(self) -> None:
        """The call resumed on a new socket: the caller's silence meanwhile is recorded."""
        self.recording.gap(self._t.clock())


def start_recording(transport: Any, config: RecordingConfig) -> RecordingTap:
    """Begin recording this call (idempotent): opens the sink on the writer thread."""
    if transport.recorder is not None:
        return transport.recorder
    info = transport.call_info
    rate = transport.serializer.input_format.sample_rate
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    name = f"{transport.serializer.provider}-{(info.call_id if info else None) or 'call'}-{stamp}"
    sink = _LazySink(config.resolved_store(), name, rate)
    writer = config.writer
    writer.put(sink.open, must=True)
    tap = RecordingTap(transport, CallRecording(rate, sink, writer, window_secs=config.window_secs), name)
    transport.recorder = tap
    return tap


class _LazySink:
    """Opened on the writer thread (creating a file is disk I/O too)."""

    def __init__(self, store: RecordingStore, name: str, rate: int) -> None:
        self._store, self._name, self._rate = store, name, rate
        self._sink: Any = None

    def open(self) -> None:
        self._sink = self._store.open(self._name, self._rate)

    def write(self, frames: bytes) -> None:
        if self._sink is not None:
            self._sink.write(frames)

    def close(self, sidecar: dict[str, Any]) -> None:
        if self._sink is not None:
            self._sink.close(sidecar)


def sidecar(transport: Any, tap: RecordingTap, extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON beside the WAV: call metadata, turns with their latency stages, counters."""
    info = transport.call_info
    stats = transport.stats
    return {
        "call": {
            "provider": transport.serializer.provider,
            "call_id": info.call_id if info else None,
            "stream_id": info.stream_id if info else None,
            "from": info.from_number if info else None,
            "to": info.to_number if info else None,
            "started_at": tap.started_wall,
            "verified": transport.verified,
            **extra,
        },
        "recording": {
            "sample_rate": tap.recording.rate,
            "channels": {"left": "caller", "right": "bot (as heard: playout clock, cut at clears)"},
        },
        "turns": [
            {"index": t.index, "stages": dict(t.stages), "heard_by": t.heard_source, "interrupted": t.interrupted}
            for t in stats.turns
        ],
        "stats": {
            "audio_in_ms": stats.audio_in_ms,
            "audio_out_ms": stats.audio_out_ms,
            "underruns": stats.underruns,
            "interruptions": stats.interruptions,
            "hangup": stats.hangup,
            "close_reason": stats.close_reason,
        },  # fmt: skip
    }


def _observe_turns(transport: Any, pair: Any) -> None:
    """Transcript lines in the sidecar's ``notes``, from the aggregators' turn events; checked
    against ``transport.recorder`` when they happen (a bot may start recording late)."""

    def caller_said(_agg: Any, message: Any) -> None:
        _note(transport, "caller", message)

    def bot_said(_agg: Any, message: Any) -> None:
        _note(transport, "bot", message)

    pair.user().add_event_handler("on_user_turn_stopped", caller_said)
    pair.assistant().add_event_handler("on_assistant_turn_stopped", bot_said)


def _note(transport: Any, role: str, message: Any) -> None:
    tap = transport.recorder
    text = getattr(message, "content", None)
    if tap is None or not isinstance(text, str) or not text or tap.recording.closed:
        return
    notes = tap.recording.notes
    count = len(notes)
    tap.note(role, text)
    if getattr(message, "interrupted", False) and len(notes) > count:
        notes[-1]["interrupted"] = True


class RecordingHook:
    """A ``CallHook``: offers recording to every call, starts it for all when ``all_calls``."""

    def __init__(self, config: RecordingConfig) -> None:
        config.resolved_store()  # a missing dir/store fails at start-up
        self.config = config

    def call_started(self, call: Any) -> None:
        transport = call.transport
        transport.recording_config = self.config
        if self.config.all_calls:
            start_recording(transport, self.config)
        # In the call's task, before its bot runs: the bot's aggregator pairs report their turns
        # (what the caller said, what the bot said and whether it was cut off) to the sidecar.
        # Chained after an observer already set (the console's call events).
        previous = TURN_OBSERVER.get()

        def observe(pair: Any) -> None:
            if previous is not None:
                previous(pair)
            _observe_turns(transport, pair)

        TURN_OBSERVER.set(observe)

    def turn_completed(self, call: Any, turn: Any) -> None:
        pass

    def service_ttfb(self, call: Any, processor: str, seconds: float, at: float) -> None:
        pass

    def call_ended(self, call: Any) -> None:
        tap = call.transport.recorder
        if tap is None:
            return
        extra = {"outcome": call.outcome, "duration_secs": round(time.monotonic() - call.started_at, 3)}
        tap.recording.finish(sidecar(call.transport, tap, extra))
