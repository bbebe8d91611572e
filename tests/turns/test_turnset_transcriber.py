"""The scripted transcriber behind the turn-taking call tests: each word once per utterance.

The fixtures' pauses are digital silence, so two segments' requests can begin with the same
100 ms of zeros (their pre-roll); the transcriber must still tell them apart, and must still
treat a speculative request and its segment's own (same buffer start) as one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "turns"))

from turnset import TurnSetTranscriber, load

from phonewire.audio.wav import read_wav


def _pcm(name: str) -> tuple[bytes, int, list[dict]]:
    utt = next(u for u in load() if u.name == name)
    pcm, rate, _ = read_wav(utt.path)
    return pcm, rate, utt.segments


def _cut(pcm: bytes, rate: int, start_ms: float, end_ms: float) -> bytes:
    return pcm[int(start_ms * rate / 1000) * 2 : int(end_ms * rate / 1000) * 2]


def test_segments_whose_pre_roll_is_silence_are_not_taken_for_one() -> None:
    pcm, rate, segs = _pcm("shopping_list")
    t = TurnSetTranscriber()
    t.current = "shopping_list"
    texts = []
    for seg in segs:  # each request: 200 ms of digital silence, then the segment, then 300 ms
        chunk = _cut(pcm, rate, seg["start_ms"] - 200, seg["end_ms"] + 300)
        assert not np.frombuffer(chunk[: rate // 10 * 2], "<i2").any()  # the head is all zeros
        texts.append(t.transcribe(chunk, rate))
    assert texts == [s["stt"] for s in segs]


def test_a_speculative_request_and_its_segments_own_start_from_the_same_word() -> None:
    pcm, rate, segs = _pcm("shopping_list")
    for late_first in (False, True):
        t = TurnSetTranscriber()
        t.current = "shopping_list"
        first = _cut(pcm, rate, segs[0]["start_ms"] - 200, segs[0]["end_ms"] + 300)
        assert t.transcribe(first, rate) == segs[0]["stt"]
        start = segs[1]["start_ms"] - 200
        spec = _cut(pcm, rate, start, segs[1]["end_ms"] + 100)  # the caller may be stopping...
        own = _cut(pcm, rate, start, segs[2]["end_ms"] + 300)  # ...but went on: one segment
        order = [own, spec] if late_first else [spec, own]
        out = [t.transcribe(chunk, rate) for chunk in order]
        by_len = dict(zip([len(c) for c in order], out, strict=True))
        assert by_len[len(spec)] == segs[1]["stt"]
        assert by_len[len(own)] == f"{segs[1]['stt']} {segs[2]['stt']}"
