"""Property tests: any bytes, any chunking, the analyzers never raise and stay consistent."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from phonewire.audio.vad import (
    EnergyVADAnalyzer,
    SileroVADAnalyzer,
    VADAnalyzer,
    VADParams,
    VADState,
    VADTransition,
)

TURN_ORDER = (VADState.SPEAKING, VADState.QUIET)


def _feed_and_check(analyzer: VADAnalyzer, chunks: list[bytes]) -> None:
    """Feed every chunk and check the invariants after each one."""
    rate = analyzer.sample_rate
    assert rate is not None
    reported: list[VADTransition] = []
    fed = 0
    for chunk in chunks:
        transitions = analyzer.analyze(chunk)
        fed += len(chunk)
        assert isinstance(analyzer.state, VADState)
        assert analyzer.pending_windows() == 0
        assert analyzer.stream_time <= fed / 2 / rate + 1e-9
        for transition in transitions:
            assert transition.stream_time <= analyzer.stream_time + 1e-9
            assert transition.speech_start_time is not None
            assert transition.speech_start_time < transition.stream_time
        reported += transitions
    # reports alternate SPEAKING, QUIET, SPEAKING, ... in time order
    assert [t.state for t in reported] == [TURN_ORDER[i % 2] for i in range(len(reported))]
    times = [t.stream_time for t in reported]
    assert times == sorted(times)
    if reported:
        speaking_now = analyzer.state in (VADState.SPEAKING, VADState.STOPPING)
        assert speaking_now == (reported[-1].state is VADState.SPEAKING)


chunk_lists = st.lists(st.binary(max_size=3000), max_size=8)


@settings(max_examples=60, deadline=None)
@given(chunks=chunk_lists, rate=st.sampled_from([8000, 16000]))
def test_silero_analyze_accepts_arbitrary_bytes(chunks: list[bytes], rate: int) -> None:
    _feed_and_check(SileroVADAnalyzer(sample_rate=rate), chunks)


@settings(max_examples=60, deadline=None)
@given(chunks=chunk_lists, rate=st.integers(min_value=1000, max_value=48000))
def test_energy_analyze_accepts_arbitrary_bytes(chunks: list[bytes], rate: int) -> None:
    _feed_and_check(EnergyVADAnalyzer(sample_rate=rate), chunks)


segments = st.lists(
    st.tuples(
        st.sampled_from(["speech", "silence", "noise"]),
        st.integers(min_value=0, max_value=16000),  # where in the speech fixture to cut
        st.integers(min_value=1, max_value=12000),  # samples
    ),
    min_size=1,
    max_size=6,
)


def _splice(speech: np.ndarray, parts: list[tuple[str, int, int]]) -> bytes:
    """Cut-and-paste speech, digital silence and loud noise into one stream."""
    rng = np.random.default_rng(len(parts))
    pieces = []
    for kind, offset, length in parts:
        if kind == "speech":
            pieces.append(np.resize(np.roll(speech, -offset), length))
        elif kind == "silence":
            pieces.append(np.zeros(length, dtype="<i2"))
        else:
            pieces.append(rng.integers(-8000, 8000, length).astype("<i2"))
    return np.concatenate(pieces).astype("<i2").tobytes()


def _split(pcm: bytes, sizes: list[int]) -> list[bytes]:
    chunks, position, turn = [], 0, 0
    while position < len(pcm):
        size = sizes[turn % len(sizes)]
        chunks.append(pcm[position : position + size])
        position, turn = position + size, turn + 1
    return chunks


@settings(max_examples=40, deadline=None)
@given(
    parts=segments,
    sizes=st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=5),
    start=st.floats(min_value=0.0, max_value=0.5),
    stop=st.floats(min_value=0.0, max_value=1.0),
)
def test_spliced_speech_with_any_chunking_and_timing_keeps_turns_consistent(
    hello_8k: np.ndarray, parts: list[tuple[str, int, int]], sizes: list[int], start: float, stop: float
) -> None:
    """Real speech cut at random points, so turns really start and stop, fed in random chunks."""
    params = VADParams(start_secs=start, stop_secs=stop)
    _feed_and_check(SileroVADAnalyzer(sample_rate=8000, params=params), _split(_splice(hello_8k, parts), sizes))
