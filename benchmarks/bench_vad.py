"""VAD cost per call: one shared Silero session (single runs or batched) vs a session per call.

Usage::

    .venv/bin/python benchmarks/bench_vad.py                 # N = 1, 10, 50, 100; ~55 s
    .venv/bin/python benchmarks/bench_vad.py --calls 1,200 --seconds 5

Each (setup, N) runs in a fresh subprocess, so CPU and RSS belong to that setup alone. N calls
each receive 8 kHz audio in 20 ms packets *paced in real time* (a 20 ms tick, as a telephony
server sees it), with their 32 ms window boundaries spread across ticks as independent calls would
be. Pacing matters: a lone window costs ~3x more when the model's working set has gone cold than
back-to-back (see docs/vad.md).

Setups:
    per-call model   the baseline: one SileroModel (= one InferenceSession) per call, the way the
                     Pipecat builds a model per call; single-window runs
    shared, single   SileroModel.shared() for all calls, one run per window (analyze())
    shared, batched  SileroModel.shared(), each tick's ready windows in one batch_confidences()

Reported per setup: CPU as % of one core per call (process CPU time / audio seconds / N), CPU per
window, RSS added after importing numpy + onnxruntime (total and per call), setup time, and the
share of ticks that finished late (>20 ms of work: the process could not keep up on one core).
Ratios are against the per-call-model baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported inside the worker, after the RSS baseline is taken
    import numpy as np

    from phonewire.audio.vad import SileroVADAnalyzer

RATE = 8000
TICK_SECS = 0.02
TICK_SAMPLES = round(RATE * TICK_SECS)
WARMUP_TICKS = 25
SETUPS = ("per-call model", "shared, single", "shared, batched")
FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "speech" / "hello_8k.wav"


@dataclass
class Result:
    setup: str
    calls: int
    audio_secs: float
    cpu_secs: float
    windows: int
    rss_added_mb: float
    setup_secs: float
    late_ticks: float

    @property
    def cpu_pct_per_call(self) -> float:
        return 100.0 * self.cpu_secs / (self.audio_secs * self.calls)

    @property
    def us_per_window(self) -> float:
        return 1e6 * self.cpu_secs / self.windows

    @property
    def mb_per_call(self) -> float:
        return self.rss_added_mb / self.calls


# -- worker: one setup, one N, in its own process --------------------------------------------------


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def _stream(seconds: float) -> np.ndarray:
    """Speech then silence, repeated: the state machine sees real turns, not just noise."""
    import numpy as np

    if FIXTURE.exists():
        with wave.open(str(FIXTURE), "rb") as wav:
            speech = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    else:  # the benchmark measures cost, which does not depend on content
        speech = np.random.default_rng(0).normal(0, 3000, 2 * RATE).astype("<i2")
    period = np.concatenate([speech, np.zeros(RATE, dtype="<i2")])
    total = round((seconds + WARMUP_TICKS * TICK_SECS + 1.0) * RATE)
    return np.resize(period, total)


def _build(setup: str, calls: int) -> list[SileroVADAnalyzer]:
    from phonewire.audio.vad import SileroModel, SileroVADAnalyzer

    if setup == "per-call model":
        return [SileroVADAnalyzer(sample_rate=RATE, model=SileroModel()) for _ in range(calls)]
    SileroModel.shared()
    return [SileroVADAnalyzer(sample_rate=RATE) for _ in range(calls)]


def _tick_single(analyzers: list[SileroVADAnalyzer], chunks: list[bytes]) -> int:
    windows = 0
    for analyzer, chunk in zip(analyzers, chunks, strict=True):
        before = analyzer.stream_time
        analyzer.analyze(chunk)
        windows += round((analyzer.stream_time - before) * RATE) // analyzer.window_samples
    return windows


def _tick_batched(analyzers: list[SileroVADAnalyzer], chunks: list[bytes]) -> int:
    from phonewire.audio.vad import batch_confidences

    for analyzer, chunk in zip(analyzers, chunks, strict=True):
        analyzer.feed(chunk)
    windows = 0
    while ready := [a for a in analyzers if a.pending_windows()]:
        taken = [a.take_window() for a in ready]
        for analyzer, window, confidence in zip(ready, taken, batch_confidences(ready, taken), strict=True):
            analyzer.apply_confidence(confidence, window)
        windows += len(ready)
    return windows


def _run_worker(setup: str, calls: int, seconds: float) -> Result:
    import numpy as np
    import onnxruntime  # noqa: F401 - imported before the RSS baseline on purpose

    import phonewire.audio.vad  # noqa: F401 - likewise: count the model and calls, not imports

    stream = _stream(seconds)
    gc.collect()
    rss_before = _rss_mb()
    started = time.perf_counter()
    analyzers = _build(setup, calls)
    setup_secs = time.perf_counter() - started
    offsets = np.random.default_rng(1).integers(0, 256, calls)  # spread window boundaries
    for analyzer, offset in zip(analyzers, offsets, strict=True):
        analyzer.analyze(stream[:offset].tobytes())
    tick = _tick_batched if setup == "shared, batched" else _tick_single
    ticks = round(seconds / TICK_SECS)
    cpu = windows = late = 0
    clock = time.perf_counter()
    for index in range(WARMUP_TICKS + ticks):
        position = 256 + index * TICK_SAMPLES
        chunk = stream[position : position + TICK_SAMPLES].tobytes()
        cpu_before = time.process_time()
        count = tick(analyzers, [chunk] * calls)
        spent = time.process_time() - cpu_before
        if index >= WARMUP_TICKS:
            cpu, windows, late = cpu + spent, windows + count, late + (spent > TICK_SECS)
        clock += TICK_SECS
        time.sleep(max(0.0, clock - time.perf_counter()))
    rss_added = _rss_mb() - rss_before
    return Result(setup, calls, ticks * TICK_SECS, cpu, windows, rss_added, setup_secs, late / ticks)


# -- driver -----------------------------------------------------------------------------------------


PIPECAT_PYTHON = Path(__file__).resolve().parents[1] / ".bench-cache" / "pipecat-venv" / "bin" / "python"
PIPECAT_WORKER = Path(__file__).resolve().parent / "pipecat" / "vad_worker.py"


def _measure(setup: str, calls: int, seconds: float) -> Result:
    if setup == "pipecat":
        command = [str(PIPECAT_PYTHON), str(PIPECAT_WORKER), str(calls), str(seconds), str(FIXTURE)]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        return Result(**json.loads(output.strip().splitlines()[-1]))
    command = [sys.executable, __file__, "--worker", setup, str(calls), str(seconds)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return Result(**json.loads(output))


def _print_table(results: list[Result]) -> None:
    header = (
        f"{'N':>4}  {'setup':<16} {'CPU %/call':>10} {'us/window':>9} {'RSS MB':>7} {'MB/call':>8} "
        f"{'setup s':>7} {'late':>5}  {'CPU vs baseline':>15} {'MB/call vs baseline':>19}"
    )
    print(header)
    print("-" * len(header))
    baseline = {r.calls: r for r in results if r.setup == "per-call model"}
    for r in results:
        base = baseline[r.calls]
        print(
            f"{r.calls:>4}  {r.setup:<16} {r.cpu_pct_per_call:>10.3f} {r.us_per_window:>9.0f} "
            f"{r.rss_added_mb:>7.1f} {r.mb_per_call:>8.2f} {r.setup_secs:>7.2f} {r.late_ticks:>5.0%}  "
            f"{r.cpu_pct_per_call / base.cpu_pct_per_call:>14.2f}x "
            f"{r.mb_per_call / base.mb_per_call:>18.3f}x"
        )


def _print_ratios(results: list[Result]) -> None:
    by_key = {(r.setup, r.calls): r for r in results}
    pipecat_runs = [r for r in results if r.setup == "pipecat"]
    if pipecat_runs:
        print("\nPipecat / phonewire (shared, batched), same run:  CPU per call   MB per call")
        for a in pipecat_runs:
            ours = by_key[("shared, batched", a.calls)]
            print(
                f"  N={a.calls:<4} {a.cpu_pct_per_call / ours.cpu_pct_per_call:>26.2f}x "
                f"{a.mb_per_call / max(ours.mb_per_call, 1e-3):>12.1f}x"
            )
    print("\nshared model, CPU per call, single runs / batched:")
    for calls in sorted({r.calls for r in results}):
        single, batched = by_key[("shared, single", calls)], by_key[("shared, batched", calls)]
        print(f"  N={calls:<4} {single.cpu_pct_per_call / batched.cpu_pct_per_call:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", default="1,10,50,100", help="comma-separated call counts")
    parser.add_argument("--seconds", type=float, default=2.5, help="measured audio seconds per run")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON too")
    parser.add_argument(
        "--pipecat",
        action="store_true",
        help="also measure Pipecat's SileroVADAnalyzer (needs .bench-cache/pipecat-venv, "
        "made by benchmarks/run_load.py)",
    )
    parser.add_argument("--worker", nargs=3, metavar=("SETUP", "N", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        setup, calls, seconds = args.worker
        print(json.dumps(asdict(_run_worker(setup, int(calls), float(seconds)))))
        return
    setups = (*SETUPS, "pipecat") if args.pipecat else SETUPS
    results = [_measure(setup, int(calls), args.seconds) for calls in args.calls.split(",") for setup in setups]
    _print_table(results)
    _print_ratios(results)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=1))


if __name__ == "__main__":
    main()
