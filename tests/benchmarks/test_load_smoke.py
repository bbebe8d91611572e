"""CI smoke run of the load benchmark (benchmarks/run_load.py): the harness works, its numbers
are sane. A few calls for a few seconds against phonewire only; timing targets live in
docs/benchmarks.md, not here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

from load import client as loadgen  # noqa: E402
from load import report, tags  # noqa: E402
from load.runner import Level, run_level  # noqa: E402

from phonewire.audio.g711 import pcm_to_ulaw, ulaw_to_pcm  # noqa: E402
from phonewire.testing.providers.twilio import TwilioClient  # noqa: E402

MEASURE_SECS = 4.0


def test_media_messages_are_the_simulators_own() -> None:
    loadgen.check_media_template(packets=8)


@pytest.mark.parametrize("seq", [0, 1, 175, 4095, tags.MAX_SEQ])
def test_tags_survive_the_codec_round_trip(seq: int) -> None:
    packet = loadgen.pattern_packet(seq, offset=3)
    echoed = pcm_to_ulaw(ulaw_to_pcm(packet))  # what an echo bot sends back
    assert echoed == packet
    assert tags.seq_from_ulaw(echoed) == seq
    assert tags.seq_from_pcm(ulaw_to_pcm(packet)) == seq
    message = TwilioClient().media_message(packet)
    payload = message.split('"payload":"', 1)[1].split('"', 1)[0]  # type: ignore[union-attr]
    assert tags.seq_from_b64(payload) == seq


def test_tags_are_inaudible() -> None:
    samples = ulaw_to_pcm(tags.make_tag(0xFFFFF))
    peak = max(abs(int.from_bytes(samples[i : i + 2], "little", signed=True)) for i in range(0, len(samples), 2))
    assert peak <= 120  # -49 dBFS


@pytest.fixture(scope="module")
def runs() -> dict[int, dict[str, Any]]:
    short = {"warmup": 1.0, "measure": MEASURE_SECS, "ramp": 0.5, "warmup_call": False}
    return {n: run_level(Level("phonewire", "none", n, **short)) for n in (1, 3)}


def _check_sane(r: dict[str, Any], calls: int) -> None:
    assert "error" not in r, r.get("error")
    assert r["connected"] == calls and r["failed"] == 0
    expected = calls * MEASURE_SECS / loadgen.PACKET_SECS
    assert 0.9 * expected <= r["sent"] <= 1.1 * expected
    # audio in == audio out, within a packet or two
    assert r["lost"] <= 2, r
    assert r["duplicates"] == 0 and r["untagged"] == 0 and not r["violations"]
    echo = r["echo_ms"]
    assert echo["count"] >= r["sent"] - 2
    assert 0 < echo["p50"] <= echo["p99"] < 100
    server = r["server"]
    assert 0 < server["cpu_pct"] < 100
    assert 10 < server["rss_base_mb"] < 1000
    assert server["rss_per_call_mb"] < 5
    probe = r["probe"]  # times one packet in four
    sampled = r["sent"] // 4 - 2
    assert probe["inbound_ms"]["count"] >= sampled and probe["outbound_ms"]["count"] >= sampled
    assert 0 < probe["inbound_ms"]["p50"] < 50 and 0 < probe["outbound_ms"]["p50"] < 50
    assert probe["transport"]["protocol_errors"] == 0 and probe["transport"]["internal_errors"] == 0


@pytest.mark.slow
def test_one_call_echoes_everything_with_no_underruns(runs: dict[int, dict[str, Any]]) -> None:
    r = runs[1]
    _check_sane(r, 1)
    assert r["underruns"] == 0
    assert r["lost"] == 0
    assert r["verdict"]["keeps_up"], r["verdict"]


@pytest.mark.slow
def test_a_few_calls_give_sane_numbers(runs: dict[int, dict[str, Any]]) -> None:
    _check_sane(runs[3], 3)


@pytest.mark.slow
def test_the_report_renders(runs: dict[int, dict[str, Any]]) -> None:
    text = report.render(list(runs.values()), {"cpus": 2, "cpu_model": "test", "versions": {}})
    assert "| phonewire | none | 1 |" in text and "| phonewire | none | 3 |" in text
