"""What both context aggregators share: the context frames, the turn state, text joining."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from phonewire.frames import (
    Frame,
    FrameDirection,
    FunctionCallCancelFrame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    LLMContextFrame,
    LLMMessagesAppendFrame,
    LLMMessagesUpdateFrame,
    LLMSetToolsFrame,
)
from phonewire.processors.aggregators.llm_context import LLMContext
from phonewire.processors.frame_processor import FrameProcessor

logger = logging.getLogger("phonewire.aggregators")

#: Default cap on the text one turn may gather (a runaway STT or LLM must not grow memory).
DEFAULT_MAX_TURN_CHARS = 8000


@dataclass(slots=True)
class SharedTurnState:
    """State the two halves of a pair share. ``generating``: a run was started and the bot
    has not spoken its reply yet - a caller who talks now cancels the reply (the transport's
    barge-in only covers audio it already holds). ``function_calls``: the tool calls running
    now (the assistant side sees their frames; the user side's mute strategies read them)."""

    generating: bool = False
    function_calls: set[str] = field(default_factory=set)


class ContextAggregator(FrameProcessor):
    """Base of the user and assistant aggregators: owns a reference to the context and
    applies the frames that edit it. ``_run_direction`` is where a run goes: downstream from
    the user side (towards the LLM), upstream from the assistant side (back through the output
    and TTS to the LLM)."""

    _run_direction = FrameDirection.DOWNSTREAM

    def __init__(self, context: LLMContext, *, shared: SharedTurnState | None = None, name: str | None = None) -> None:
        super().__init__(name=name)
        if not isinstance(context, LLMContext):
            raise TypeError(f"{type(self).__name__} needs an LLMContext, not {context!r}")
        self._context = context
        self._shared = shared or SharedTurnState()

    @property
    def context(self) -> LLMContext:
        return self._context

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, FunctionCallInProgressFrame):
            self._shared.function_calls.add(frame.tool_call_id)
        elif isinstance(frame, FunctionCallResultFrame | FunctionCallCancelFrame):
            self._shared.function_calls.discard(frame.tool_call_id)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self._context.messages

    async def push_context_frame(self, direction: FrameDirection | None = None) -> None:
        """Run the LLM on the context as it is now."""
        self._shared.generating = True
        await self.push_frame(LLMContextFrame(context=self._context), direction or self._run_direction)

    async def _handle_context_edit(self, frame: Frame) -> bool:
        """Apply an append/update/set-tools frame; True if ``frame`` was one (consumed)."""
        if isinstance(frame, LLMMessagesAppendFrame):
            self._context.add_messages(frame.messages)
            if frame.run_llm:
                await self.push_context_frame()
            return True
        if isinstance(frame, LLMMessagesUpdateFrame):
            self._context.set_messages(frame.messages)
            if frame.run_llm:
                await self.push_context_frame()
            return True
        if isinstance(frame, LLMSetToolsFrame):
            self._context.set_tools(frame.tools)
            return True
        return False


class BoundedText:
    """Text gathered for one turn, capped at ``max_chars`` (the excess dropped, logged once)."""

    __slots__ = ("_max", "_parts", "_size", "_truncated", "_what")

    def __init__(self, max_chars: int, what: str) -> None:
        self._max = max_chars
        self._parts: list[str] = []
        self._size = 0
        self._truncated = False
        self._what = what

    def add(self, text: str) -> None:
        room = self._max - self._size
        if len(text) > room:
            if not self._truncated:
                logger.warning("- %s longer than %d characters: the rest is dropped", self._what, self._max)
            self._truncated = True
            text = text[: max(room, 0)]
        if text:
            self._parts.append(text)
            self._size += len(text)

    def prepend(self, text: str) -> None:
        """Put ``text`` before the parts gathered so far (a turn taken back); capped like add."""
        rest, self._parts = self._parts, []
        self._size, self._truncated = 0, False
        for part in (text, *rest):
            self.add(part)

    def clear(self) -> None:
        self._parts.clear()
        self._size = 0
        self._truncated = False

    @property
    def parts(self) -> list[str]:
        return self._parts

    def __bool__(self) -> bool:
        return self._size > 0

    def words(self) -> str:
        """Parts that are words or sentences (transcripts, TTS text): joined with spaces."""
        return join_words(self._parts)

    def concatenated(self) -> str:
        """Parts that are tokens (LLM text): joined as they are."""
        return "".join(self._parts).strip()


_NO_SPACE_BEFORE = tuple(",.;:!?)…'\"’”")


def join_words(parts: list[str]) -> str:
    """Join word/sentence pieces with one space, none before punctuation or where the pieces
    already carry their own spacing (some TTS services send " word", some "word")."""
    out = ""
    for part in parts:
        if not part:
            continue
        if out and not out[-1].isspace() and not part[0].isspace() and not part.startswith(_NO_SPACE_BEFORE):
            out += " "
        out += part
    return " ".join(out.split())
