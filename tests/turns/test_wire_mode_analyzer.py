"""In wire mode (Deepgram or Realtime take the line's μ-law untouched) caller frames carry no
PCM: the turn analyzer in the user aggregator must still hear the caller."""

from __future__ import annotations

import numpy as np

from phonewire.audio.g711 import pcm_to_ulaw
from phonewire.frames import InputAudioRawFrame
from phonewire.processors.aggregators import LLMContext, LLMUserAggregator, LLMUserAggregatorParams
from phonewire.processors.aggregators._user_turns import pcm_of
from phonewire.turns import TurnAnalyzerUserTurnStopStrategy, UserTurnStrategies


class Ear:
    """A turn analyzer that keeps what it is fed."""

    sample_rate: int | None = None

    def __init__(self) -> None:
        self.heard = bytearray()

    def set_sample_rate(self, rate: int) -> None:
        self.sample_rate = rate

    def append_audio(self, pcm: bytes, is_speech: bool) -> None:
        self.heard += pcm

    def speech_started(self) -> None: ...

    def clear(self) -> None: ...


def _tone() -> bytes:
    t = np.arange(160) / 8000
    return (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()


def test_the_analyzer_hears_wire_mode_audio_decoded() -> None:
    pcm = _tone()
    wire = pcm_to_ulaw(pcm)
    frame = InputAudioRawFrame(audio=b"", sample_rate=8000, wire_audio=wire, wire_encoding="mulaw")
    ear = Ear()
    strategies = UserTurnStrategies(stop=[TurnAnalyzerUserTurnStopStrategy(turn_analyzer=ear)])  # type: ignore[arg-type]
    aggregator = LLMUserAggregator(LLMContext(), params=LLMUserAggregatorParams(user_turn_strategies=strategies))
    aggregator._feed_analyzer(frame)
    assert len(ear.heard) == 2 * len(wire)
    heard = np.frombuffer(bytes(ear.heard), "<i2").astype(float)
    assert np.corrcoef(heard, np.frombuffer(pcm, "<i2"))[0, 1] > 0.99  # the caller, not silence


def test_pcm_frames_pass_as_they_are() -> None:
    pcm = _tone()
    frame = InputAudioRawFrame(audio=pcm, sample_rate=8000)
    assert pcm_of(frame) is pcm
