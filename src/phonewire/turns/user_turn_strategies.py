"""UserTurnStrategies: the start and stop strategies a user aggregator runs (Pipecat's name).

``UserTurnStrategies()`` with no arguments is **phonewire's default**: the turn starts at the
VAD's start (or a transcript), and ends by :class:`TurnAnalyzerUserTurnStopStrategy` with a
per-call :class:`LocalSmartTurnAnalyzerV3`, the transcript as a second opinion, and at most
1.5 s of silence. It wants the VAD to report pauses quickly: ``VADParams(stop_secs=0.2, stop_drop_db=35,
early_stop_secs=0.1)``
(:data:`TURN_ANALYZER_VAD_PARAMS`) on the transport's analyzer. Build one per call: the
analyzer holds the call's audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from phonewire.audio.vad.params import VADParams
from phonewire.turns.user_start import (
    BaseUserTurnStartStrategy,
    TranscriptionUserTurnStartStrategy,
    VADUserTurnStartStrategy,
)
from phonewire.turns.user_stop import BaseUserTurnStopStrategy, TurnAnalyzerUserTurnStopStrategy

__all__ = ["TURN_ANALYZER_VAD_PARAMS", "UserTurnStrategies", "default_stop_strategies"]

#: The VAD settings a turn analyzer wants: report a pause after 0.2 s and let the model decide;
#: a window 35 dB below the run's loudest is silence, so the pause is timed from the sound's end
#: rather than Silero's ~60-100 ms confidence tail (onsets unchanged; docs/turn-taking.md); and
#: at 0.1 s the VAD reports that the caller may be stopping, so a segmented STT transcribes the
#: segment speculatively while the stop is still being confirmed (``early_stop_secs=0``: off).
TURN_ANALYZER_VAD_PARAMS = VADParams(stop_secs=0.2, stop_drop_db=35.0, early_stop_secs=0.1)


def default_stop_strategies() -> list[BaseUserTurnStopStrategy]:
    from phonewire.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3

    return [TurnAnalyzerUserTurnStopStrategy(turn_analyzer=LocalSmartTurnAnalyzerV3())]


def _default_start() -> list[BaseUserTurnStartStrategy]:
    return [VADUserTurnStartStrategy(), TranscriptionUserTurnStartStrategy()]


@dataclass(slots=True, kw_only=True)
class UserTurnStrategies:
    start: list[BaseUserTurnStartStrategy] = field(default_factory=_default_start)
    stop: list[BaseUserTurnStopStrategy] = field(default_factory=default_stop_strategies)

    def __post_init__(self) -> None:
        if not self.start or not self.stop:
            raise ValueError("UserTurnStrategies: need at least one start and one stop strategy")
        analyzers = [s.turn_analyzer for s in self.stop if s.turn_analyzer is not None]
        if len(analyzers) > 1:
            raise ValueError("UserTurnStrategies: at most one stop strategy with a turn_analyzer")

    @property
    def turn_analyzer(self) -> object | None:
        return next((s.turn_analyzer for s in self.stop if s.turn_analyzer is not None), None)
