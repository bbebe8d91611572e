"""The context aggregator pair, at Pipecat's module path.

``LLMContextAggregatorPair(context)`` builds the two halves around one shared
:class:`~phonewire.processors.aggregators.llm_context.LLMContext`::

    pair = LLMContextAggregatorPair(context, user_params=LLMUserAggregatorParams(...))
    Pipeline([transport.input(), stt, pair.user(), llm, tts, transport.output(), pair.assistant()])

The halves also share a little turn state, so the user side knows a reply is being generated
(and cancels it when the caller talks before any bot audio exists). The classes themselves
live in ``user.py`` and ``assistant.py``; this module re-exports them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from phonewire.processors.aggregators._base import SharedTurnState
from phonewire.processors.aggregators.assistant import (
    AssistantTurnStoppedMessage,
    LLMAssistantAggregator,
    LLMAssistantAggregatorParams,
)
from phonewire.processors.aggregators.llm_context import LLMContext
from phonewire.processors.aggregators.user import (
    LLMUserAggregator,
    LLMUserAggregatorParams,
    UserTurnStoppedMessage,
)

__all__ = [
    "AssistantTurnStoppedMessage",
    "LLMAssistantAggregator",
    "LLMAssistantAggregatorParams",
    "LLMContextAggregatorPair",
    "TURN_OBSERVER",
    "LLMUserAggregator",
    "LLMUserAggregatorParams",
    "UserTurnStoppedMessage",
]

#: Called with each pair built while it is set: ``phonewire.server.call_events`` sets it for a
#: call's bot so the softphone and console see both sides' turns, with no code in the bot.
TURN_OBSERVER: ContextVar[Callable[[Any], None] | None] = ContextVar("phonewire_turn_observer", default=None)


class LLMContextAggregatorPair:
    def __init__(
        self,
        context: LLMContext,
        *,
        user_params: LLMUserAggregatorParams | None = None,
        assistant_params: LLMAssistantAggregatorParams | None = None,
    ) -> None:
        shared = SharedTurnState()
        self._user = LLMUserAggregator(context, params=user_params, shared=shared)
        self._assistant = LLMAssistantAggregator(context, params=assistant_params, shared=shared)
        observer = TURN_OBSERVER.get()
        if observer is not None:
            observer(self)

    def user(self) -> LLMUserAggregator:
        return self._user

    def assistant(self) -> LLMAssistantAggregator:
        return self._assistant

    @property
    def context(self) -> LLMContext:
        return self._user.context
