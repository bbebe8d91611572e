"""Frames of a conversation: transcripts, the LLM context and its runs, replies, speech, tools.

Names and meanings follow Pipecat so a bot ports by changing imports. Where phonewire adds
something it says so: ``TTSTextFrame.pts_ms`` (where in the utterance's audio a word starts,
so the transport can tell which words the caller heard) and ``FunctionCallResultFrame``'s
``run_llm`` default (the turn continues after a result unless told otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from phonewire.frames.core import (
    ControlFrame,
    DataFrame,
    SystemFrame,
    TextFrame,
    UninterruptibleFrame,
    _TranscriptFrame,
)

if TYPE_CHECKING:  # frames import nothing of ours at run time
    from phonewire.processors.aggregators.llm_context import LLMContext

__all__ = [
    "FunctionCallCancelFrame",
    "FunctionCallFromLLM",
    "FunctionCallInProgressFrame",
    "FunctionCallResultFrame",
    "FunctionCallResultProperties",
    "FunctionCallsStartedFrame",
    "InterimTranscriptionFrame",
    "InterruptionTaskFrame",
    "LLMContextFrame",
    "LLMFullResponseEndFrame",
    "LLMFullResponseStartFrame",
    "LLMMessagesAppendFrame",
    "LLMMessagesUpdateFrame",
    "LLMRunFrame",
    "LLMSetToolsFrame",
    "LLMTextFrame",
    "TTSSpeakFrame",
    "TTSTextFrame",
]


# --- speech to text --------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class InterimTranscriptionFrame(_TranscriptFrame):
    """A partial transcript that may still change; the user aggregator does not store it."""


# --- the LLM context -------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class LLMContextFrame(DataFrame):
    """Run the LLM on this context (pushed by the user aggregator when a turn ends)."""

    context: LLMContext


@dataclass(slots=True, kw_only=True)
class LLMRunFrame(DataFrame):
    """Run the LLM on the aggregator's context as it is (e.g. for the greeting)."""


@dataclass(slots=True, kw_only=True)
class _LLMMessagesFrame(DataFrame):
    """Messages for the context (the base of the append and update frames); ``run_llm`` runs
    the LLM afterwards."""

    messages: list[dict[str, Any]]
    run_llm: bool | None = None


@dataclass(slots=True, kw_only=True)
class LLMMessagesAppendFrame(_LLMMessagesFrame):
    """Append messages to the context."""


@dataclass(slots=True, kw_only=True)
class LLMMessagesUpdateFrame(_LLMMessagesFrame):
    """Replace the context's messages."""


@dataclass(slots=True, kw_only=True)
class LLMSetToolsFrame(DataFrame):
    """Replace the tools the LLM may call (OpenAI function-tool dicts or a ToolsSchema)."""

    tools: Any


# --- the LLM's reply -------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class LLMFullResponseStartFrame(ControlFrame):
    """The LLM started a reply; LLMTextFrames follow until the end frame."""


@dataclass(slots=True, kw_only=True)
class LLMFullResponseEndFrame(ControlFrame):
    """The LLM's reply is complete (also sent when a reply ends in tool calls)."""


@dataclass(slots=True, kw_only=True)
class LLMTextFrame(TextFrame):
    """A piece of the LLM's reply as it streams (a token or a few)."""


# --- text to speech --------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class TTSSpeakFrame(DataFrame):
    """Say this text now (a greeting, an apology); ``append_to_context`` records it."""

    text: str
    append_to_context: bool = True


@dataclass(slots=True, kw_only=True)
class TTSTextFrame(TextFrame):
    """Text whose audio the TTS produced, pushed in order with that audio.

    ``pts_ms`` is where the text's audio starts, in ms from the start of the utterance
    (word timestamps where the service gives them, else the start of the sentence's audio);
    the output transport compares it with what the provider acknowledged playing to say
    which words the caller heard.
    """

    context_id: str | None = None
    pts_ms: float | None = None


# --- interruptions ---------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class InterruptionTaskFrame(SystemFrame):
    """Pushed upstream: asks the PipelineTask to interrupt the bot (an InterruptionFrame
    goes downstream from the start of the pipeline)."""


# --- function calling ------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class FunctionCallFromLLM:
    """One tool call the LLM asked for."""

    function_name: str
    tool_call_id: str
    arguments: dict[str, Any]
    context: Any = None


@dataclass(slots=True, kw_only=True)
class FunctionCallResultProperties:
    """How a result continues the turn: ``run_llm`` None means "when the last pending call
    of this reply returns"; ``on_context_updated`` runs once the result is in the context."""

    run_llm: bool | None = None
    on_context_updated: Any = None


@dataclass(slots=True, kw_only=True)
class FunctionCallsStartedFrame(SystemFrame):
    """The LLM asked for these calls; handlers are starting."""

    function_calls: list[FunctionCallFromLLM] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class FunctionCallInProgressFrame(ControlFrame, UninterruptibleFrame):
    """A handler is running. Survives interruptions so the context stays consistent."""

    function_name: str
    tool_call_id: str
    arguments: dict[str, Any] = field(default_factory=dict)
    cancel_on_interruption: bool = False


@dataclass(slots=True, kw_only=True)
class FunctionCallResultFrame(DataFrame, UninterruptibleFrame):
    """A handler's result (or its error / timeout, as a result the LLM can read)."""

    function_name: str
    tool_call_id: str
    arguments: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    run_llm: bool | None = None
    properties: FunctionCallResultProperties | None = None


@dataclass(slots=True, kw_only=True)
class FunctionCallCancelFrame(SystemFrame):
    """A running handler was cancelled (an interruption, with cancel_on_interruption)."""

    function_name: str
    tool_call_id: str
