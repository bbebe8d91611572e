"""Per-packet cost of the audio layer: every function here runs once per 20 ms packet per call.

Run with ``python benchmarks/bench_audio.py``. Absolute microseconds depend on the machine, so
each result is also given as a ratio to baselines measured in the same run: a plain
``bytes(n)`` allocation of the packet's size (the floor for any function returning a new
packet) and, where available, CPython's ``audioop`` doing the same job.
"""

from __future__ import annotations

import sys
import timeit
import warnings
from collections.abc import Callable
from types import ModuleType

from phonewire.audio import (
    Packetizer,
    StreamResampler,
    alaw_to_pcm,
    pcm_to_alaw,
    pcm_to_ulaw,
    tone,
    ulaw_to_pcm,
)

PACKET_US = 20_000  # one packet's worth of real time
RESAMPLE_PAIRS = [(8000, 16000), (16000, 8000), (8000, 24000), (24000, 8000), (22050, 8000), (48000, 8000)]


def _audioop() -> ModuleType | None:
    """audioop if importable (stdlib before 3.13, audioop-lts after), for a familiar baseline."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:
            return None
    return audioop


def _per_call_us(fn: Callable[[], object], number: int = 5000, repeat: int = 7) -> float:
    """Best-of-repeats timing in µs (as timeit recommends): noise only ever adds time."""
    return 1e6 * min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def _row(name: str, us: float, baseline_us: float, reference_us: float | None) -> str:
    ratio_ref = f"{us / reference_us:9.2f}x" if reference_us else "         -"
    budget = 100 * us / PACKET_US
    return f"{name:<28} {us:9.2f} µs {us / baseline_us:9.1f}x {ratio_ref} {budget:8.3f}%"


def _codec_rows(audioop: ModuleType | None, baseline_us: float) -> list[str]:
    pcm = tone(440, 0.02, 8000)
    ulaw, alaw = pcm_to_ulaw(pcm), pcm_to_alaw(pcm)
    cases: list[tuple[str, Callable[[], object], Callable[[], object] | None]] = [
        ("pcm_to_ulaw (160 samples)", lambda: pcm_to_ulaw(pcm), audioop and (lambda: audioop.lin2ulaw(pcm, 2))),
        ("ulaw_to_pcm (160 codes)", lambda: ulaw_to_pcm(ulaw), audioop and (lambda: audioop.ulaw2lin(ulaw, 2))),
        ("pcm_to_alaw (160 samples)", lambda: pcm_to_alaw(pcm), audioop and (lambda: audioop.lin2alaw(pcm, 2))),
        ("alaw_to_pcm (160 codes)", lambda: alaw_to_pcm(alaw), audioop and (lambda: audioop.alaw2lin(alaw, 2))),
    ]
    return [_row(name, _per_call_us(fn), baseline_us, _per_call_us(ref) if ref else None) for name, fn, ref in cases]


def _resample_rows(audioop: ModuleType | None, baseline_us: float) -> list[str]:
    rows = []
    for in_rate, out_rate in RESAMPLE_PAIRS:
        packet = tone(440, 0.02, in_rate)
        resampler = StreamResampler(in_rate, out_rate)
        reference = None
        if audioop is not None:
            state: list[object] = [None]

            def ratecv(packet: bytes = packet, a: int = in_rate, b: int = out_rate, state: list = state) -> None:
                _, state[0] = audioop.ratecv(packet, 2, 1, a, b, state[0])

            reference = _per_call_us(ratecv, number=2000)
        us = _per_call_us(lambda p=packet, r=resampler: r.process(p), number=2000)
        rows.append(_row(f"resample {in_rate}->{out_rate}", us, baseline_us, reference))
    return rows


def _packetizer_rows(baseline_us: float) -> list[str]:
    exact, packetizer = bytes(160), Packetizer(160)
    odd = bytes(237)  # a TTS chunk that straddles packet boundaries
    return [
        _row("Packetizer.push (=1 packet)", _per_call_us(lambda: packetizer.push(exact)), baseline_us, None),
        _row("Packetizer.push (237 bytes)", _per_call_us(lambda: packetizer.push(odd)), baseline_us, None),
    ]


def main() -> None:
    audioop = _audioop()
    baseline_us = _per_call_us(lambda: bytes(320), number=50000)
    print(f"Python {sys.version.split()[0]}; baseline bytes(320) = {baseline_us:.3f} µs")
    print(f"{'per 20 ms packet':<28} {'time':>12} {'vs bytes()':>10} {'vs audioop':>10} {'of 20 ms':>9}")
    for line in (
        _codec_rows(audioop, baseline_us) + _resample_rows(audioop, baseline_us) + _packetizer_rows(baseline_us)
    ):
        print(line)
    if audioop is None:
        print("(audioop not available: install audioop-lts for the reference column)")


if __name__ == "__main__":
    main()
