"""Turn-taking: who has the floor, with Pipecat's names (see docs/turn-taking.md).

Pass :class:`UserTurnStrategies` and user-mute strategies to ``LLMUserAggregatorParams``::

    LLMUserAggregatorParams(
        user_turn_strategies=UserTurnStrategies(),            # phonewire's default: Smart Turn + transcript
        user_mute_strategies=[MuteUntilFirstBotCompleteUserMuteStrategy()],
        user_idle_timeout=8.0,
    )
"""

from phonewire.turns.transcript_hints import ClauseHint, clause_hint
from phonewire.turns.user_mute import (
    AlwaysUserMuteStrategy,
    BaseUserMuteStrategy,
    FunctionCallUserMuteStrategy,
    MuteUntilFirstBotCompleteUserMuteStrategy,
    UserMuteState,
)
from phonewire.turns.user_start import (
    BaseUserTurnStartStrategy,
    MinWordsUserTurnStartStrategy,
    TranscriptionUserTurnStartStrategy,
    VADUserTurnStartStrategy,
)
from phonewire.turns.user_stop import (
    BaseUserTurnStopStrategy,
    SpeechTimeoutUserTurnStopStrategy,
    TurnAnalyzerUserTurnStopStrategy,
    TurnView,
)
from phonewire.turns.user_turn_strategies import TURN_ANALYZER_VAD_PARAMS, UserTurnStrategies

__all__ = [
    "TURN_ANALYZER_VAD_PARAMS",
    "AlwaysUserMuteStrategy",
    "BaseUserMuteStrategy",
    "BaseUserTurnStartStrategy",
    "BaseUserTurnStopStrategy",
    "ClauseHint",
    "FunctionCallUserMuteStrategy",
    "MinWordsUserTurnStartStrategy",
    "MuteUntilFirstBotCompleteUserMuteStrategy",
    "SpeechTimeoutUserTurnStopStrategy",
    "TranscriptionUserTurnStartStrategy",
    "TurnAnalyzerUserTurnStopStrategy",
    "TurnView",
    "UserMuteState",
    "UserTurnStrategies",
    "VADUserTurnStartStrategy",
    "clause_hint",
]
