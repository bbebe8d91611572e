"""Pipecat's Silero VAD under the same paced workload as benchmarks/bench_vad.py.

Run by bench_vad.py with Pipecat's own interpreter (``.bench-cache/pipecat-venv``, made by
``benchmarks/load/pipecat_env.py``): ``python vad_worker.py N SECONDS FIXTURE``. It prints one
JSON result with the fields of bench_vad.Result. Each call gets pipecat's
``SileroVADAnalyzer`` (its own ONNX session, as Pipecat builds one per call), fed 20 ms of
8 kHz audio per tick; ``_run_analyzer`` is what pipecat runs in its executor thread, called
here directly so only the analysis is measured.
"""

from __future__ import annotations

import gc
import json
import sys
import time
import wave

import numpy as np
import psutil

RATE, TICK_SECS, WARMUP_TICKS = 8000, 0.02, 25
TICK_SAMPLES = round(RATE * TICK_SECS)


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


def stream(seconds: float, fixture: str) -> np.ndarray:
    with wave.open(fixture, "rb") as wav:
        speech = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    period = np.concatenate([speech, np.zeros(RATE, dtype="<i2")])
    return np.resize(period, round((seconds + WARMUP_TICKS * TICK_SECS + 1.0) * RATE))


def main(calls: int, seconds: float, fixture: str) -> None:
    import onnxruntime  # noqa: F401  (imported before the RSS baseline, as bench_vad does)
    from pipecat.audio.vad.silero import SileroVADAnalyzer

    audio = stream(seconds, fixture)
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    analyzers = [SileroVADAnalyzer(sample_rate=RATE) for _ in range(calls)]
    for analyzer in analyzers:
        analyzer.set_sample_rate(RATE)
    setup_secs = time.perf_counter() - started
    offsets = np.random.default_rng(1).integers(0, 256, calls)
    for analyzer, offset in zip(analyzers, offsets, strict=True):
        analyzer._run_analyzer(audio[:offset].tobytes())
    ticks = round(seconds / TICK_SECS)
    cpu = late = windows = 0.0
    clock = time.perf_counter()
    for index in range(WARMUP_TICKS + ticks):
        position = 256 + index * TICK_SAMPLES
        chunk = audio[position : position + TICK_SAMPLES].tobytes()
        t0 = time.process_time()
        for analyzer in analyzers:
            analyzer._run_analyzer(chunk)
        spent = time.process_time() - t0
        if index >= WARMUP_TICKS:
            cpu, late = cpu + spent, late + (spent > TICK_SECS)
            windows += calls * TICK_SAMPLES / 256
        clock += TICK_SECS
        time.sleep(max(0.0, clock - time.perf_counter()))
    result = {
        "setup": "pipecat",
        "calls": calls,
        "audio_secs": ticks * TICK_SECS,
        "cpu_secs": cpu,
        "windows": int(windows),
        "rss_added_mb": rss_mb() - before,
        "setup_secs": setup_secs,
        "late_ticks": late / ticks,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3])
