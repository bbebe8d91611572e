"""The demo's default "brain": keyword rules with fixed answers, as an ``LLMService``.

It is not a language model and does not pretend to be one: it reads the caller's last message,
picks the first rule whose keyword stems appear in it, and says that rule's fixed answer (or a
fallback that lists what it can answer). It exists so ``phonewire demo`` converses on a fresh
machine with no key and no network, deterministically, so a test can check every word the bot
says. Because it is an ``LLMService`` subclass that takes ``LLMContextFrame``s and answers with
``LLMFullResponseStartFrame`` / ``LLMTextFrame`` / ``LLMFullResponseEndFrame``, the pipeline
around it is exactly the one a real LLM uses: swap in ``OpenAILLMService`` and nothing else
changes (``phonewire.demo.conversation`` does, when ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL``
is set). The same facts go to the LLM as its system prompt (``SYSTEM_PROMPT``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from phonewire.frames import (
    Frame,
    FrameDirection,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from phonewire.processors.frame_processor import FrameProcessor
from phonewire.services.llm_service import LLMService

__all__ = [
    "BAKERY_RULES",
    "FALLBACK",
    "GOODBYE_WORDS",
    "GREETING",
    "SYSTEM_PROMPT",
    "Rule",
    "RulesLLMService",
    "last_user_text",
    "says_goodbye",
]


@dataclass(frozen=True, slots=True)
class Rule:
    """Answer ``answer`` when any word of the caller's message starts with one of ``stems``."""

    name: str
    stems: tuple[str, ...]
    answer: str


GREETING = "Hello, you have reached the phonewire bakery. Ask me about our opening hours, delivery, or prices."
#: First match wins, so the goodbye comes first ("thanks, goodbye" is a goodbye, not thanks).
BAKERY_RULES: tuple[Rule, ...] = (
    Rule("goodbye", ("bye", "goodbye"), "Thanks for calling the bakery. Goodbye, and have a nice day!"),
    # "Thanks." alone (a caller who may go on: "Thanks, goodbye.") is not an unknown question.
    Rule("thanks", ("thank",), "You're welcome. Is there anything else I can help you with?"),
    Rule(
        "delivery",
        ("deliver",),
        "Yes, we deliver on Sundays, from ten in the morning until two in the afternoon. "
        "Delivery is free for orders over twenty dollars, and the driver calls you before arriving.",
    ),
    Rule(
        "hours",
        ("hour", "open", "close", "closing"),
        "We are open Monday to Saturday, from eight in the morning until six in the evening.",
    ),
    Rule("prices", ("price", "cost", "much", "loaf", "bread"), "A loaf of sourdough bread costs four dollars."),
)
FALLBACK = "Sorry, I can only tell you about our opening hours, delivery, and prices."
GOODBYE_WORDS = BAKERY_RULES[0].stems
SYSTEM_PROMPT = (
    "You answer the phone for a small bakery. Speak in one or two short sentences, no lists or "
    "symbols. Facts: open 8 am to 6 pm Monday to Saturday; delivery on Sundays from 10 am to 2 pm, "
    "free over twenty dollars; a loaf of sourdough costs four dollars. When the caller says goodbye, "
    "thank them and say goodbye."
)
_WORDS = re.compile(r"[a-z']+")


def _words(text: str) -> list[str]:
    return _WORDS.findall(text.lower())


def match_rule(text: str, rules: Sequence[Rule] = BAKERY_RULES) -> Rule | None:
    words = _words(text)
    return next((r for r in rules if any(w.startswith(s) for w in words for s in r.stems)), None)


def says_goodbye(text: str) -> bool:
    return any(w.startswith(s) for w in _words(text) for s in GOODBYE_WORDS)


def last_user_text(messages: Sequence[Any]) -> str:
    """The text of the newest user message in an OpenAI-style message list ("" if none)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):  # content parts
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class RulesLLMService(LLMService):
    """An ``LLMService`` that answers from ``rules`` (first match) or ``fallback``.

    ``answers`` records (caller text, rule name, answer) per reply, for reports and tests."""

    def __init__(
        self, *, rules: Sequence[Rule] = BAKERY_RULES, fallback: str = FALLBACK, name: str | None = None
    ) -> None:
        super().__init__(name=name)
        self.rules = tuple(rules)
        self.fallback = fallback
        self.answers: list[tuple[str, str, str]] = []
        self.metrics.model = "rules"

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, LLMContextFrame):  # consumed, as a real LLM consumes it
            await FrameProcessor.process_frame(self, frame, direction)
            await self._answer(frame.context)
            return
        await super().process_frame(frame, direction)

    async def _answer(self, context: Any) -> None:
        messages = context.get_messages() if hasattr(context, "get_messages") else context.messages
        heard = last_user_text(messages)
        rule = match_rule(heard, self.rules)
        answer = rule.answer if rule else self.fallback
        self.answers.append((heard, rule.name if rule else "fallback", answer))
        await self.push_frame(LLMFullResponseStartFrame())
        await self.push_first_token_stage()
        # Word by word, as tokens stream from a model: the TTS's sentence splitter does the rest.
        for i, word in enumerate(answer.split(" ")):
            await self.push_frame(LLMTextFrame(text=word if i == 0 else " " + word))
        await self.push_frame(LLMFullResponseEndFrame())

    def describe(self) -> str:
        return f"keyword rules ({len(self.rules)} answers + fallback)"
