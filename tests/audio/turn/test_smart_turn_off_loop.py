"""The model never runs on the event loop: a slow inference must not delay another call's packets."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from phonewire.audio.turn.smart_turn import LocalSmartTurnAnalyzerV3, SmartTurnBusy, SmartTurnRunner

PACKET_SECS = 0.02


class SlowModel:
    """Stands for a model whose call takes 300 ms in its thread."""

    def __init__(self) -> None:
        self.threads: set[str] = set()

    def predict(self, features: np.ndarray) -> np.ndarray:
        import threading

        self.threads.add(threading.current_thread().name)
        time.sleep(0.3)
        return np.array([0.9], dtype=np.float32)


async def _pace_packets(stop: asyncio.Event) -> list[float]:
    """Another call's 20 ms packet clock: how late each packet went out (loop-lag probe)."""
    lateness, start, n = [], time.perf_counter(), 0
    while not stop.is_set():
        n += 1
        due = start + n * PACKET_SECS
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        lateness.append(time.perf_counter() - due)
    return lateness


def _analyzer(runner: SmartTurnRunner) -> LocalSmartTurnAnalyzerV3:
    analyzer = LocalSmartTurnAnalyzerV3(sample_rate=8000, runner=runner)
    analyzer.speech_started()
    tone = (3000 * np.sin(2 * np.pi * 300 * np.arange(16000) / 8000)).astype("<i2").tobytes()
    analyzer.append_audio(tone, True)
    return analyzer


@pytest.mark.parametrize("real_model", [False, True], ids=["slow-300ms", "real-model"])
def test_inference_does_not_delay_another_calls_packets(real_model: bool) -> None:
    model = None if real_model else SlowModel()
    runner = SmartTurnRunner(model=model)  # type: ignore[arg-type]

    async def main() -> tuple[list[float], list[float]]:
        stop = asyncio.Event()
        pacer = asyncio.get_running_loop().create_task(_pace_packets(stop))
        took: list[float] = []
        began = time.perf_counter()
        while len(took) < 4 or time.perf_counter() - began < 0.5:  # calls' pauses, back to back, >= 0.5 s
            t0 = time.perf_counter()
            verdict = await _analyzer(runner).analyze_end_of_turn()
            took.append(time.perf_counter() - t0)
            assert 0.0 <= verdict.probability <= 1.0
        stop.set()
        return await pacer, took

    try:
        lateness, took = asyncio.run(main())
    finally:
        runner.shutdown()
    if not real_model:
        assert min(took) >= 0.3  # the inference really was slow ...
        assert model is not None and all(t.startswith("smart-turn") for t in model.threads)  # ... and not here
    assert len(lateness) >= 10
    assert max(lateness) < 0.015, f"a packet went out {1000 * max(lateness):.1f} ms late"


def test_a_full_queue_refuses_at_once_instead_of_growing() -> None:
    runner = SmartTurnRunner(model=SlowModel(), max_pending=2)  # type: ignore[arg-type]

    async def main() -> None:
        analyzers = [_analyzer(runner) for _ in range(3)]
        first = [asyncio.ensure_future(a.analyze_end_of_turn()) for a in analyzers[:2]]
        await asyncio.sleep(0)
        with pytest.raises(SmartTurnBusy):
            await analyzers[2].analyze_end_of_turn()
        await asyncio.gather(*first)

    try:
        asyncio.run(main())
    finally:
        runner.shutdown()
    assert runner.stats.rejected == 1 and runner.pending == 0
