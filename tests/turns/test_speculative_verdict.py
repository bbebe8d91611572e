"""A speculative Smart Turn verdict (at the VAD's early stop report, 0.1 s of silence) is made
on the evidence of the confirmed pause (0.2 s): the analyzer makes up the missing silence from
the caller's own. Unpadded, the model takes 0.1 s of silence for a pause inside the turn
(measured: P(complete) 0.85 -> 0.16 for "cancel"); padded it lands near the confirmed pause's
verdict (the model itself moves by ~0.1 between 0.15 s and 0.3 s of silence)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from phonewire.audio.turn.smart_turn import LocalSmartTurnAnalyzerV3
from phonewire.audio.turn.smart_turn.local_smart_turn_v3 import _pad_silence
from phonewire.audio.wav import read_wav

TURNS = Path(__file__).resolve().parents[1] / "fixtures" / "turns"
RATE = 8000


def _speech(name: str) -> np.ndarray:
    data, rate, _ = read_wav(TURNS / f"{name}.wav")  # espeak-ng, 8 kHz μ-law
    assert rate == RATE
    pcm = np.frombuffer(data, dtype="<i2")
    voiced = np.flatnonzero(np.abs(pcm) > 300)
    return pcm[: int(voiced[-1]) + 1]  # up to the end of the sound


async def _verdict(speech: np.ndarray, silence_s: float, *, told: float | None) -> float:
    analyzer = LocalSmartTurnAnalyzerV3(sample_rate=RATE)
    rng = np.random.default_rng(7)
    line = np.concatenate([speech, rng.normal(0, 30, int(silence_s * RATE))]).astype("<i2")
    analyzer.speech_started()
    for i in range(0, len(line), 160):  # 20 ms packets, as a call feeds it
        analyzer.append_audio(line[i : i + 160].tobytes(), True)
    return (await analyzer.analyze_end_of_turn(silence_secs=told)).probability


@pytest.mark.parametrize("name", ["close_today", "cancel", "balance", "yes"])
def test_the_speculative_verdict_matches_the_confirmed_pause(name: str) -> None:
    speech = _speech(name)

    async def main() -> tuple[float, float, float]:
        confirmed = await _verdict(speech, 0.2, told=None)
        speculative = await _verdict(speech, 0.1, told=0.1)
        unpadded = await _verdict(speech, 0.1, told=None)
        return confirmed, speculative, unpadded

    confirmed, speculative, unpadded = asyncio.run(main())
    assert speculative == pytest.approx(confirmed, abs=0.15), (confirmed, speculative, unpadded)
    assert abs(speculative - confirmed) <= abs(unpadded - confirmed), (confirmed, speculative, unpadded)


def test_padding_repeats_the_callers_silence_up_to_the_pause() -> None:
    audio, tail = b"S" * 10, b"ab"
    padded = _pad_silence(audio + tail, have=2, want=7)
    assert padded == audio + b"ab" + b"ababa"
    assert _pad_silence(b"", have=2, want=6) == b""
