"""Context aggregators: the conversation's memory, with Pipecat's names.

``LLMContext`` holds the messages (OpenAI's format); ``LLMContextAggregatorPair`` gives the
user half (after the STT: caller turns in, LLM runs out) and the assistant half (last: the
reply as far as the caller heard it, tool calls and results).
"""

from phonewire.processors.aggregators.llm_context import LLMContext, LLMContextMessage
from phonewire.processors.aggregators.llm_response_universal import (
    AssistantTurnStoppedMessage,
    LLMAssistantAggregator,
    LLMAssistantAggregatorParams,
    LLMContextAggregatorPair,
    LLMUserAggregator,
    LLMUserAggregatorParams,
    UserTurnStoppedMessage,
)

__all__ = [
    "AssistantTurnStoppedMessage",
    "LLMAssistantAggregator",
    "LLMAssistantAggregatorParams",
    "LLMContext",
    "LLMContextAggregatorPair",
    "LLMContextMessage",
    "LLMUserAggregator",
    "LLMUserAggregatorParams",
    "UserTurnStoppedMessage",
]
