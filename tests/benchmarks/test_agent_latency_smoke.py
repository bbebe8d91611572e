"""CI smoke run of the agent turn-latency benchmark (benchmarks/bench_agent_latency.py): one
short call, the harness works and its numbers are sane. The latency target lives in
docs/benchmarks.md, not here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_agent_latency as bench  # noqa: E402


@pytest.mark.slow
def test_one_short_call_gives_sane_numbers() -> None:
    latencies = bench.Latencies(stt_s=0.1, llm_first_token_s=0.1, tts_first_byte_s=0.05)
    result = bench.run(calls=1, turns=2, latencies=latencies, warmup=False)
    assert result["problems"] == []
    summary = result["summary"]
    assert summary["turns"] == 2
    for row in result["turns"]:
        fakes = row["fakes_ms"]  # the fake's recorded delays are the configured ones
        assert 95 <= fakes["stt"] < 150 and 95 <= fakes["llm_first_token"] < 150 and 45 <= fakes["tts_first_byte"] < 100
        assert row["vad_wait_ms"] == pytest.approx(800)
        assert 0 < row["own_transport_ms"] <= row["own_ms"] + 50  # the handset agrees with the transport
        stages = row["stages_ms"]
        assert list(stages) == list(bench.STAGE_ORDER)
        assert all(a <= b for a, b in zip(stages.values(), list(stages.values())[1:], strict=False))
        assert row["response_ms"] == pytest.approx(row["vad_wait_ms"] + row["fakes_total_ms"] + row["own_ms"])
    assert 0 < summary["own_transport_ms"]["median"] < 500
    assert "phonewire's own" in bench.render(summary)
