"""Turn-taking end to end: a real server, the call simulator, FakeOpenAIServer's STT/LLM/TTS.

The caller says utterances of tests/fixtures/turns (espeak-ng, 8 kHz μ-law over the Twilio
protocol) with phonewire's default strategy; the fake STT returns the scripted text of each
segment it is sent. One call serves both tests (it takes ~25 s of real time).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_turn_taking as bench  # noqa: E402

PAUSED = ("phone_number", "shopping_list", "hesitation")
COMPLETE = ("cancel", "close_today")


@pytest.fixture(scope="module")
def call() -> dict[str, Any]:
    utterances = [u for u in bench.load() if u.name in PAUSED + COMPLETE]
    return bench.run_config("phonewire_default", utterances, bench.Latencies())


def test_a_paused_utterance_is_not_cut_off(call: dict[str, Any]) -> None:
    assert call["errors"] == []
    # one LLM run per utterance, at its end, with all of its words; none at the pauses
    assert call["user_messages"] == call["expected_messages"]
    assert call["llm_runs"] == len(call["expected_messages"])
    assert call["cut_offs"] == 0
    assert call["smart_turn"]["inferences"] >= len(call["expected_messages"])  # the model did run


def test_the_answer_starts_well_under_the_old_0_9_s(call: dict[str, Any]) -> None:
    responses = {r["utterance"]: r["response_ms"] for r in call["rows"]}
    for name in COMPLETE:
        assert responses[name] is not None and responses[name] < 750, responses
    for name in PAUSED:  # the patient ones are still bounded
        assert responses[name] is not None and responses[name] < 1500 + 400, responses
