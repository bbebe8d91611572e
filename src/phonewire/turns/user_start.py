"""When does a caller's turn start? Pipecat's start strategies.

A start strategy answers two questions the user aggregator asks: "the VAD heard speech begin:
does the turn start?" and "a transcript came: does it start now?". The first strategy that says
yes starts the turn (``on_user_turn_started``, ``UserStartedSpeakingFrame``, and - while a
reply is being generated - the interruption of that reply).

The transport's own barge-in (``TransportParams.interruption_min_speech_secs``) still stops bot
audio it holds; :class:`MinWordsUserTurnStartStrategy` governs the aggregator's turn and
its interruption of a reply still being generated.
"""

from __future__ import annotations

from dataclasses import dataclass

from phonewire.exceptions import ConfigurationError

__all__ = [
    "BaseUserTurnStartStrategy",
    "MinWordsUserTurnStartStrategy",
    "TranscriptionUserTurnStartStrategy",
    "UserTurnStartContext",
    "VADUserTurnStartStrategy",
]


@dataclass(frozen=True, slots=True)
class UserTurnStartContext:
    bot_speaking: bool
    words: int  # words in the transcripts of the pending turn so far


class BaseUserTurnStartStrategy:
    def on_speech_started(self, ctx: UserTurnStartContext) -> bool:
        return False

    def on_transcript(self, ctx: UserTurnStartContext) -> bool:
        return False


class VADUserTurnStartStrategy(BaseUserTurnStartStrategy):
    """The turn starts when the VAD hears speech (fastest; a cough counts)."""

    def on_speech_started(self, ctx: UserTurnStartContext) -> bool:
        return True


class TranscriptionUserTurnStartStrategy(BaseUserTurnStartStrategy):
    """The turn starts with the first transcript (for STTs that endpoint without a VAD)."""

    def on_transcript(self, ctx: UserTurnStartContext) -> bool:
        return ctx.words > 0


class MinWordsUserTurnStartStrategy(BaseUserTurnStartStrategy):
    """While the bot speaks, the turn starts only once the caller said ``min_words`` words
    ("mm-hmm" does not take the floor); otherwise at the VAD's start."""

    def __init__(self, *, min_words: int = 3) -> None:
        if min_words < 1:
            raise ConfigurationError(f"MinWordsUserTurnStartStrategy(min_words={min_words}): must be >= 1")
        self.min_words = min_words

    def on_speech_started(self, ctx: UserTurnStartContext) -> bool:
        return not ctx.bot_speaking

    def on_transcript(self, ctx: UserTurnStartContext) -> bool:
        return ctx.words >= (self.min_words if ctx.bot_speaking else 1)
