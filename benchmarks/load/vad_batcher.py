"""Prototype: one Silero inference for many calls (benchmark only, a candidate for src/).

The shipped transport calls ``analyzer.analyze(pcm)`` per packet, which runs one ONNX
inference per 32 ms window per call. ``batch_confidences`` (src/phonewire/audio/vad/silero.py)
already computes a batch of windows from many calls in one run; what is missing is something
that gathers the windows. This module is that something, built only from the analyzer's
public batching hooks (``feed``/``pending_windows``/``take_window``/``apply_confidence``):

* ``BatchedSileroVADAnalyzer.analyze(pcm)`` buffers the audio and, if a window is complete,
  registers the call with the process-wide batcher; it returns the turn boundaries found by
  batches that ran since the previous packet (so decisions reach the transport at most one
  packet plus ``FLUSH_SECS`` later: ~30 ms, against Silero's 200 ms ``start_secs``);
* the batcher runs ``FLUSH_SECS`` after the first window arrives and computes one window of
  every waiting call per inference (repeating while some call still has a full window).

Decisions are identical to per-call ``analyze()`` (the same state machine, fed the same
confidences in the same order); only their delivery is deferred.
"""

from __future__ import annotations

import asyncio
from typing import Any

from phonewire.audio.vad import SileroModel, SileroVADAnalyzer, VADTransition, batch_confidences

__all__ = ["BatchedSileroVADAnalyzer", "CrossCallBatcher", "install"]

FLUSH_SECS = 0.01


class CrossCallBatcher:
    def __init__(self, flush_secs: float = FLUSH_SECS) -> None:
        self.flush_secs = flush_secs
        self._waiting: dict[int, BatchedSileroVADAnalyzer] = {}
        self._handle: asyncio.TimerHandle | None = None
        self.batches = 0
        self.windows = 0

    def submit(self, analyzer: BatchedSileroVADAnalyzer) -> None:
        self._waiting[id(analyzer)] = analyzer
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self.flush_secs, self._flush)

    def _flush(self) -> None:
        self._handle = None
        ready = list(self._waiting.values())
        self._waiting.clear()
        while ready:
            ready = [a for a in ready if a.pending_windows()]
            if not ready:
                break
            windows = [a.take_window() for a in ready]
            confidences = batch_confidences(ready, windows)
            self.batches += 1
            self.windows += len(ready)
            for analyzer, window, confidence in zip(ready, windows, confidences, strict=True):
                transition = analyzer.apply_confidence(confidence, window)
                if transition is not None:
                    analyzer.ready.append(transition)


BATCHER = CrossCallBatcher()


class BatchedSileroVADAnalyzer(SileroVADAnalyzer):
    def __init__(self, **kwargs: Any) -> None:
        self.ready: list[VADTransition] = []
        super().__init__(**kwargs)

    def analyze(self, pcm: bytes | bytearray | memoryview) -> list[VADTransition]:
        self.feed(pcm)
        if self.pending_windows():
            BATCHER.submit(self)
        if not self.ready:
            return []
        out, self.ready = self.ready, []
        return out


def install(server_app_module: Any) -> None:
    """Make ``ServerConfig(vad="silero-batched")`` build batched analyzers (patches make_vad)."""
    original = server_app_module.make_vad

    def make_vad(kind: str | None) -> Any:
        if kind == "silero-batched":
            return BatchedSileroVADAnalyzer(model=SileroModel.shared())
        return original(kind)

    server_app_module.make_vad = make_vad
