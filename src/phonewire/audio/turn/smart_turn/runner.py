"""Where Smart Turn inferences run: one bounded queue and worker thread per process.

An inference costs ~50–80 ms of CPU (features + model). On the event loop that would stall the
pacing of every other call for as long, so each request is handed to a worker thread and the
caller awaits a future. Requests from all calls share one FIFO queue:

* **queued, not batched**: batching does not lower the cost per item for this model (a batch of
  4 costs ~4×, services.md §7.6; ``benchmarks/bench_turn_taking.py`` re-measures it), while it
  would make the first call in a batch wait for the last;
* **bounded**: at most ``max_pending`` requests wait; beyond that :meth:`submit` raises
  :class:`SmartTurnBusy` at once and the caller's strategy falls back to its silence/transcript
  rules (a turn is never lost, only decided without the model);
* **one worker by default**: with one intra-op thread per inference, one worker uses at most
  one core, so the event loop always keeps the other. ``workers=`` raises it on bigger boxes.

CPU time per inference is measured on the worker (``time.thread_time``) and kept in
:attr:`SmartTurnRunner.stats`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from phonewire.audio.resample import StreamResampler
from phonewire.audio.turn.smart_turn._shared import ProcessShared
from phonewire.audio.turn.smart_turn.features import SAMPLE_RATE, WINDOW_SAMPLES, smart_turn_features
from phonewire.audio.turn.smart_turn.model import SmartTurnModel

__all__ = ["DEFAULT_MAX_PENDING", "InferenceResult", "RunnerStats", "SmartTurnBusy", "SmartTurnRunner", "prepare"]

logger = logging.getLogger("phonewire.turns")

#: Requests that may wait for the worker. At ~70 ms each, 16 queued is ~1.1 s of backlog: past
#: that a verdict would come later than the silence fallback it is meant to beat.
DEFAULT_MAX_PENDING = 16


class SmartTurnBusy(RuntimeError):
    """The queue is full: decide this turn without the model."""


@dataclass(frozen=True, slots=True)
class InferenceResult:
    probability: float
    cpu_ms: float  # features + model, on the worker thread
    queued_ms: float  # submit -> the worker started it


@dataclass(slots=True)
class RunnerStats:
    inferences: int = 0
    rejected: int = 0
    cpu_ms_total: float = 0.0
    queued_ms_max: float = 0.0


def prepare(pcm: bytes, sample_rate: int) -> np.ndarray:
    """s16le mono at any rate -> float32 16 kHz (the last 8 s at most), on the worker thread.

    8 kHz telephone audio is resampled with the project's resampler (libsamplerate); the 4–8 kHz
    band stays empty, which is what the model hears from any phone line.
    """
    keep = int(WINDOW_SAMPLES * sample_rate / SAMPLE_RATE) + 64
    pcm = pcm[-2 * keep :] if len(pcm) > 2 * keep else pcm
    pcm = pcm[: len(pcm) & ~1]
    if sample_rate != SAMPLE_RATE:
        resampler = StreamResampler(sample_rate, SAMPLE_RATE, quality="sinc_medium")
        pcm = resampler.process(pcm) + resampler.flush()
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / np.float32(32768.0)


class SmartTurnRunner(ProcessShared):
    """The process-wide inference queue (see the module docstring). Thread-safe to submit from
    any event loop; results are delivered to the submitting loop."""

    def __init__(
        self, model: SmartTurnModel | None = None, *, workers: int = 1, max_pending: int = DEFAULT_MAX_PENDING
    ) -> None:
        self._model = model
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smart-turn")
        self._max_pending = max_pending
        self._pending = 0
        self._lock = threading.Lock()
        self.stats = RunnerStats()

    @property
    def pending(self) -> int:
        return self._pending

    async def submit(self, pcm: bytes, sample_rate: int) -> InferenceResult:
        """P(complete) for this turn's audio. Raises SmartTurnBusy when the queue is full."""
        with self._lock:
            if self._pending >= self._max_pending:
                self.stats.rejected += 1
                raise SmartTurnBusy(f"{self._pending} Smart Turn inferences already queued")
            self._pending += 1
        submitted = time.perf_counter()
        future = self._executor.submit(self._infer, pcm, sample_rate, submitted)
        future.add_done_callback(self._release)  # also when cancelled while still queued
        return await asyncio.wrap_future(future)

    def _release(self, _future: object) -> None:
        with self._lock:
            self._pending -= 1

    def _infer(self, pcm: bytes, sample_rate: int, submitted: float) -> InferenceResult:
        started, cpu0 = time.perf_counter(), time.thread_time()
        model = self._model if self._model is not None else SmartTurnModel.shared()
        probability = float(model.predict(smart_turn_features(prepare(pcm, sample_rate)))[0])
        cpu_ms = 1000 * (time.thread_time() - cpu0)
        queued_ms = 1000 * (started - submitted)
        with self._lock:
            stats = self.stats
            stats.inferences += 1
            stats.cpu_ms_total += cpu_ms
            stats.queued_ms_max = max(stats.queued_ms_max, queued_ms)
        return InferenceResult(probability, cpu_ms, queued_ms)

    def warm_up(self) -> None:
        """Load the model now (blocking; call at start-up, not on the event loop)."""
        if self._model is None:
            SmartTurnModel.shared()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
