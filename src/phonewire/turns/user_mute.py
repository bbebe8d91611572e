"""When is the caller not listened to? Pipecat's user-mute strategies.

While any strategy says muted, the user aggregator ignores the caller: transcripts are dropped,
speech does not start or end a turn, and the transport's ``InterruptionFrame`` stops at the
aggregator (so the greeting, or the "one moment" during a lookup, plays out). Audio still flows
(the STT and VAD keep their state).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AlwaysUserMuteStrategy",
    "BaseUserMuteStrategy",
    "FunctionCallUserMuteStrategy",
    "MuteUntilFirstBotCompleteUserMuteStrategy",
    "UserMuteState",
]


@dataclass(frozen=True, slots=True)
class UserMuteState:
    bot_speaking: bool
    bot_turns_completed: int  # BotStoppedSpeakingFrames seen
    function_calls_in_progress: int


class BaseUserMuteStrategy:
    def is_muted(self, state: UserMuteState) -> bool:
        raise NotImplementedError


class MuteUntilFirstBotCompleteUserMuteStrategy(BaseUserMuteStrategy):
    """Muted from the start of the call until the bot's first utterance (the greeting) ends."""

    def is_muted(self, state: UserMuteState) -> bool:
        return state.bot_turns_completed == 0


class FunctionCallUserMuteStrategy(BaseUserMuteStrategy):
    """Muted while a function call runs (its result would arrive into a changed conversation)."""

    def is_muted(self, state: UserMuteState) -> bool:
        return state.function_calls_in_progress > 0


class AlwaysUserMuteStrategy(BaseUserMuteStrategy):
    """Muted whenever the bot speaks: no barge-in at all."""

    def is_muted(self, state: UserMuteState) -> bool:
        return state.bot_speaking
