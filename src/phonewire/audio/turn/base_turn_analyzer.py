"""The end-of-turn analyzer interface, with Pipecat's names.

An analyzer is **per call** (it holds that call's audio); the expensive part, the model, is
shared by the process. The strategy that drives it appends the call's audio, marks where speech
started, and awaits :meth:`BaseTurnAnalyzer.analyze_end_of_turn` when the VAD reports a pause.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum

__all__ = ["BaseTurnAnalyzer", "EndOfTurnState", "TurnVerdict"]


class EndOfTurnState(Enum):
    COMPLETE = 1
    INCOMPLETE = 2


@dataclass(frozen=True, slots=True)
class TurnVerdict:
    """One analysis: the state, P(complete), and what it cost (for metrics and benchmarks)."""

    state: EndOfTurnState
    probability: float
    inference_ms: float = 0.0  # CPU on the worker: features + model
    queued_ms: float = 0.0
    e2e_ms: float = 0.0  # request -> verdict on the event loop

    @property
    def is_complete(self) -> bool:
        return self.state is EndOfTurnState.COMPLETE


class BaseTurnAnalyzer(ABC):
    @property
    @abstractmethod
    def sample_rate(self) -> int | None: ...

    @abstractmethod
    def set_sample_rate(self, sample_rate: int) -> None: ...

    @abstractmethod
    def append_audio(self, pcm: bytes, is_speech: bool) -> None:
        """The call's audio, every frame (the analyzer keeps a bounded tail)."""

    @abstractmethod
    def speech_started(self) -> None:
        """The VAD heard speech begin (the analysed segment starts a little before it)."""

    @abstractmethod
    async def analyze_end_of_turn(self, *, silence_secs: float | None = None) -> TurnVerdict:
        """Is the turn so far complete? Off the event loop; raises if the model cannot run.

        ``silence_secs``: given for a speculative analysis (at the VAD's early stop report), the
        caller's silence at the end of the audio so far, shorter than at a confirmed pause; an
        analyzer whose model expects a longer silence may make up the rest."""

    @abstractmethod
    def clear(self) -> None:
        """The turn ended: forget its audio."""
