"""LLMAssistantAggregator: the bot's reply, recorded as far as the caller heard it.

Placed last, after ``transport.output()``, so it sees what the output did with the reply: the
``TTSTextFrame``s (text whose audio the TTS produced; ``LLMTextFrame``s when no TTS sends text),
``LLMFullResponseStart/EndFrame``, and ``BotStarted/StoppedSpeakingFrame`` from the transport,
whose ``heard_text`` says what of the current utterance the caller heard.

* A reply the caller heard to the end (a ``BotStoppedSpeakingFrame`` that was not interrupted,
  after the reply ended) becomes ``{"role": "assistant", "content": <full text>}``. A reply may
  span several transport utterances: each non-interrupted stop marks all text received so far
  as heard.
* On barge-in (``BotStoppedSpeakingFrame(interrupted=True)`` and/or ``InterruptionFrame``, in
  either order) only what was heard is kept: the utterances already played in full plus the
  interrupted one's ``heard_text``, followed by ``interruption_suffix`` (default ``" —"``, so an
  LLM reads ``"Your order shipped on Mon —"`` as speech cut off; a bracketed note would be
  imitated by the model and then spoken). Text never played is not in the context; if nothing was
  heard there is no assistant message (the interruption is logged and reported in the event).
  Pipecat drops a partly heard reply from the context entirely (measured); the model then repeats
  itself or contradicts what the caller heard.
* ``heard_text=None`` (a TTS without text frames, or no provider ack): a normal stop counts the
  text received as heard; an interrupted one keeps the proportion ``heard_ms / sent_ms`` of the
  utterance's text, cut back to a word boundary (nothing when those are unknown too).
* Text with no LLM reply around it (``TTSSpeakFrame``: a greeting, an apology) is recorded the
  same way, unless its TTSTextFrames carry ``metadata={"append_to_context": False}``.
* With no speech at all in the call so far (a text-only pipeline), a reply is recorded when it
  ends.

Function calls: a ``FunctionCallInProgressFrame`` adds, at once, the assistant message with
``tool_calls`` (parallel calls of one reply merge into one message; the reply's heard text, if
any, becomes its ``content``) and a ``{"role": "tool"}`` message holding ``tool_in_progress``, so
the context is valid for OpenAI at every moment - a caller turn during the call sends it as is.
``FunctionCallResultFrame`` replaces that content with the result (str as is, else JSON). When the
last pending call of the reply has its result and ``run_llm`` is not False (None: run when all are
done), the aggregator pushes ``LLMContextFrame`` **upstream**: it travels back through the output
and the TTS to the LLM. A call cancelled (``FunctionCallCancelFrame``, or an interruption with
``cancel_on_interruption``) gets ``tool_cancelled`` as its result, and after an interruption
nothing re-runs (the caller's turn will); results arriving later still update the context.

Events: ``on_assistant_turn_started(aggregator)`` (an LLM reply began) and
``on_assistant_turn_stopped(aggregator, message)`` (an :class:`AssistantTurnStoppedMessage`).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from phonewire.exceptions import ConfigurationError
from phonewire.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    ControlFrame,
    EndFrame,
    Frame,
    FrameDirection,
    FunctionCallCancelFrame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSTextFrame,
    UninterruptibleFrame,
    UserStartedSpeakingFrame,
)
from phonewire.processors.aggregators._base import (
    DEFAULT_MAX_TURN_CHARS,
    BoundedText,
    ContextAggregator,
    SharedTurnState,
    join_words,
    logger,
)
from phonewire.processors.aggregators.llm_context import LLMContext

__all__ = ["AssistantTurnStoppedMessage", "LLMAssistantAggregator", "LLMAssistantAggregatorParams"]

UP = FrameDirection.UPSTREAM
_MAX_OPEN_REPLIES = 8  # replies received but not yet heard; more means speech never comes
_MAX_CALLS_REMEMBERED = 64  # tool calls whose late results may still update the context


@dataclass(slots=True, kw_only=True)
class LLMAssistantAggregatorParams:
    """How replies and tool calls enter the context. Unknown arguments raise TypeError."""

    #: Appended to a reply the caller cut off ("" to add nothing).
    interruption_suffix: str = " —"
    #: Content of a tool message while its call runs (keeps the context valid for OpenAI).
    tool_in_progress: str = "in progress: the result is not back yet"
    #: Content of a tool message whose call was cancelled.
    tool_cancelled: str = "cancelled: the caller interrupted"
    #: Longest wait for a result's ``on_context_updated`` callback, seconds.
    on_context_updated_timeout_secs: float = 5.0
    #: Cap on one reply's text, in characters (longer text is cut, logged).
    max_turn_chars: int = DEFAULT_MAX_TURN_CHARS

    def __post_init__(self) -> None:
        if self.max_turn_chars < 1:
            raise ConfigurationError(f"LLMAssistantAggregatorParams(max_turn_chars={self.max_turn_chars}): >= 1")
        if not 0 < self.on_context_updated_timeout_secs <= 60:
            raise ConfigurationError("LLMAssistantAggregatorParams(on_context_updated_timeout_secs): use (0, 60]")


@dataclass(slots=True, kw_only=True)
class AssistantTurnStoppedMessage:
    """What ``on_assistant_turn_stopped`` reports. ``content`` is what entered the context
    (None: nothing was heard); ``interrupted``: the caller cut the reply off."""

    content: str | None
    timestamp: str
    interrupted: bool = False
    heard_ms: float | None = None


@dataclass(slots=True, kw_only=True)
class _InOrder(ControlFrame, UninterruptibleFrame):
    """A BotStoppedSpeakingFrame (a system frame, so it overtakes queued data) put back in
    line behind the text frames that were already queued when it came."""

    stop: BotStoppedSpeakingFrame


@dataclass(slots=True, eq=False)
class _Reply:
    text: BoundedText  # received, not yet heard (TTS words or LLM tokens)
    heard: list[str] = field(default_factory=list)
    tts: bool = False  # text comes from TTSTextFrames (LLM text is then ignored)
    ended: bool = False
    message: dict[str, Any] | None = None  # the context message this reply fills, once it exists
    heard_ms: float | None = None
    cut: bool = False  # the caller interrupted its audio

    def pending(self) -> str:
        return self.text.words() if self.tts else self.text.concatenated()

    def mark_heard(self, piece: str | None = None) -> None:
        piece = self.pending() if piece is None else piece
        if piece:
            self.heard.append(piece)
        self.text.clear()


@dataclass(slots=True, eq=False)
class _Batch:
    """The tool calls of one reply."""

    message: dict[str, Any]
    pending: set[str] = field(default_factory=set)
    interrupted: bool = False


@dataclass(slots=True, eq=False)
class _Call:
    batch: _Batch
    tool_message: dict[str, Any]
    cancel_on_interruption: bool


class LLMAssistantAggregator(ContextAggregator):
    _run_direction = UP

    def __init__(
        self,
        context: LLMContext,
        *,
        params: LLMAssistantAggregatorParams | None = None,
        shared: SharedTurnState | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(context, shared=shared, name=name)
        self._params = params or LLMAssistantAggregatorParams()
        self._replies: list[_Reply] = []  # oldest first; the last is the current one
        self._last_committed: _Reply | None = None  # may still take straggling text
        self._amend: tuple[_Reply, str] | None = None  # cut off by an InterruptionFrame: await heard_text
        self._bot_speaking = False
        self._ever_spoke = False
        self._batch: _Batch | None = None
        self._calls: OrderedDict[str, _Call] = OrderedDict()
        self._register_event_handler("on_assistant_turn_started")
        self._register_event_handler("on_assistant_turn_stopped")

    @property
    def params(self) -> LLMAssistantAggregatorParams:
        return self._params

    # --- frames ------------------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if frame.__class__ is InputAudioRawFrame:  # the caller's audio, 50 a second: passed on as is
            await self.push_frame(frame, direction)
            return
        await super().process_frame(frame, direction)
        if await self._handle_context_edit(frame):
            return
        if isinstance(frame, LLMFullResponseStartFrame):
            self._new_reply()
            self._call_event_handler("on_assistant_turn_started")
        elif isinstance(frame, LLMFullResponseEndFrame):
            if self._replies:
                self._replies[-1].ended = True
            self._maybe_commit()
        elif isinstance(frame, TTSTextFrame):
            if (frame.metadata or {}).get("append_to_context", True):
                self._add_text(frame.text, tts=True)
        elif isinstance(frame, LLMTextFrame):
            self._add_text(frame.text, tts=False)
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = self._ever_spoke = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            if self._queue:  # text still queued here was sent before this stop: judge it first
                await self.queue_frame(_InOrder(stop=frame), direction)
            else:
                self._on_bot_stopped(frame)
        elif isinstance(frame, _InOrder):
            self._on_bot_stopped(frame.stop)
            return
        elif isinstance(frame, InterruptionFrame):
            self._on_interruption()
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._last_committed = None
        elif isinstance(frame, FunctionCallInProgressFrame):
            f = frame
            self._on_call_started(f.tool_call_id, f.function_name, f.arguments, f.cancel_on_interruption)
        elif isinstance(frame, FunctionCallResultFrame):
            await self._on_call_result(frame)
        elif isinstance(frame, FunctionCallCancelFrame):
            self._on_call_cancelled(frame.tool_call_id)
        elif isinstance(frame, EndFrame | CancelFrame):
            self._commit_all(cut=True)
            self._settle_amend()
        await self.push_frame(frame, direction)

    # --- replies -----------------------------------------------------------------------

    def _new_reply(self, *, ended: bool = False) -> _Reply:
        self._settle_amend()
        self._last_committed = None
        self._batch = None
        if len(self._replies) >= _MAX_OPEN_REPLIES:
            logger.warning("- %s: %d replies never heard: recording the oldest", self.name, len(self._replies))
            self._commit(self._replies.pop(0), interrupted=False)
        reply = _Reply(text=BoundedText(self._params.max_turn_chars, "the bot's reply"), ended=ended)
        self._replies.append(reply)
        return reply

    def _add_text(self, text: str, *, tts: bool) -> None:
        if not text:
            return
        if self._replies:
            reply = self._replies[-1]
        elif self._last_committed is not None and self._last_committed.message is not None:
            reply = self._last_committed  # text straggling in after its reply was recorded
            self._last_committed = None
            self._replies.append(reply)
        else:
            reply = self._new_reply(ended=True)  # TTSSpeakFrame: no LLM reply around it
        if tts and not reply.tts:
            reply.tts = True
            reply.text.clear()  # the LLM's tokens of this reply are superseded by what the TTS said
        if tts == reply.tts:
            reply.text.add(text)

    def _maybe_commit(self) -> None:
        """Record the replies that are over: ended and nothing left to hear."""
        if self._bot_speaking:
            return
        while self._replies and self._replies[0].ended:
            reply = self._replies[0]
            if not self._ever_spoke:
                reply.mark_heard()  # no speech in this pipeline: received is all there is
            elif reply.pending():
                return
            self._replies.pop(0)
            self._commit(reply, interrupted=False)
        if not self._replies and self._batch is None:
            self._shared.generating = False

    def _on_bot_stopped(self, frame: BotStoppedSpeakingFrame) -> None:
        self._bot_speaking = False
        if not frame.interrupted:
            for reply in self._replies:
                reply.mark_heard()
            self._maybe_commit()
            return
        if self._amend is not None:  # the InterruptionFrame came first and recorded the rest
            reply, pending = self._amend
            self._amend = None
            piece = self._heard_piece(frame, pending)
            reply.heard_ms = frame.heard_ms
            if piece:
                reply.heard.append(piece)
            self._report(reply, self._write(reply, interrupted=True), interrupted=True)
            return
        current = next((r for r in self._replies if r.pending()), None)
        if current is not None:
            current.heard_ms = frame.heard_ms
            current.cut = True
            current.mark_heard(self._heard_piece(frame, current.pending()))
        self._commit_all(cut=True)

    def _on_interruption(self) -> None:
        self._settle_amend()
        for batch in {id(c.batch): c.batch for c in self._calls.values() if c.batch.pending}.values():
            self._interrupt_calls(batch)
        current = next((r for r in self._replies if r.pending()), None)
        if current is not None and self._bot_speaking:
            self._amend = (current, current.pending())
        self._commit_all(cut=True)
        self._shared.generating = False

    def _heard_piece(self, frame: BotStoppedSpeakingFrame, pending: str) -> str:
        if frame.heard_text is not None:
            return frame.heard_text.strip()
        if frame.heard_ms is None or not frame.sent_ms or frame.sent_ms <= 0:
            return ""
        share = min(max(frame.heard_ms / frame.sent_ms, 0.0), 1.0)
        cut = int(len(pending) * share)
        if cut >= len(pending):
            return pending
        # keep whole words only: back to the last space at or before the cut
        if cut < len(pending) and not pending[cut].isspace():
            cut = pending.rfind(" ", 0, cut + 1)
        return pending[: max(cut, 0)].strip()

    def _commit_all(self, *, cut: bool) -> None:
        replies, self._replies = self._replies, []
        for reply in replies:
            unheard = bool(reply.pending()) or not reply.ended or reply.cut
            self._commit(reply, interrupted=cut and unheard)

    def _commit(self, reply: _Reply, *, interrupted: bool) -> None:
        content = self._write(reply, interrupted=interrupted)
        self._last_committed = None if interrupted else reply
        if self._amend is not None and self._amend[0] is reply:
            return  # reported once the transport says what of it was heard
        self._report(reply, content, interrupted=interrupted)

    def _report(self, reply: _Reply, content: str | None, *, interrupted: bool) -> None:
        if content is None and interrupted:
            logger.info("= %s: the caller interrupted before hearing the reply: nothing recorded", self.name)
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        message = AssistantTurnStoppedMessage(
            content=content, timestamp=stamp, interrupted=interrupted, heard_ms=reply.heard_ms
        )
        self._call_event_handler("on_assistant_turn_stopped", message)

    def _settle_amend(self) -> None:
        """The awaited interrupted stop never came: report the reply as it stands."""
        if self._amend is not None:
            reply, self._amend = self._amend[0], None
            self._report(reply, reply.message.get("content") if reply.message else None, interrupted=True)

    def _write(self, reply: _Reply, *, interrupted: bool) -> str | None:
        """Put the reply's heard text into the context (in place if its message exists)."""
        text = join_words(reply.heard) or None
        if text is not None and interrupted:
            text += self._params.interruption_suffix
        if reply.message is not None:
            reply.message["content"] = text
        elif text is not None:
            reply.message = {"role": "assistant", "content": text}
            self._context.add_message(reply.message)
        return text

    # --- function calls ----------------------------------------------------------------

    def _on_call_started(self, call_id: str, name: str, arguments: Any, cancel_on_interruption: bool) -> None:
        if call_id in self._calls:
            return
        batch = self._batch
        if batch is None:
            batch = self._batch = _Batch(message=self._tool_calls_message())
        batch.message["tool_calls"].append(
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": _arguments_json(arguments)}}
        )
        tool_message = {"role": "tool", "tool_call_id": call_id, "content": self._params.tool_in_progress}
        self._context.messages.insert(self._after_tool_block(batch.message), tool_message)
        batch.pending.add(call_id)
        self._calls[call_id] = _Call(batch, tool_message, cancel_on_interruption)
        while len(self._calls) > _MAX_CALLS_REMEMBERED:
            self._calls.popitem(last=False)

    def _tool_calls_message(self) -> dict[str, Any]:
        """The assistant message that carries this reply's calls: the reply's own message if it
        is the latest in the context, else a new one (the reply's text then fills it)."""
        messages = self._context.messages
        reply = self._replies[-1] if self._replies else self._last_committed
        if reply is not None and reply.message is not None and messages and messages[-1] is reply.message:
            reply.message.setdefault("tool_calls", [])
            return reply.message
        message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": []}
        self._context.add_message(message)
        if reply is not None and reply.message is None:
            reply.message = message
            if reply.heard:
                message["content"] = join_words(reply.heard)
        return message

    def _after_tool_block(self, message: dict[str, Any]) -> int:
        messages = self._context.messages
        index = next(i for i, m in enumerate(messages) if m is message) + 1
        while index < len(messages) and messages[index].get("role") == "tool":
            index += 1
        return index

    async def _on_call_result(self, frame: FunctionCallResultFrame) -> None:
        call = self._calls.get(frame.tool_call_id)
        if call is None:  # no in-progress frame seen: record the call now
            self._on_call_started(frame.tool_call_id, frame.function_name, frame.arguments, False)
            call = self._calls[frame.tool_call_id]
        call.tool_message["content"] = _result_content(frame.result)
        batch = call.batch
        batch.pending.discard(frame.tool_call_id)
        props = frame.properties
        run_llm = frame.run_llm if frame.run_llm is not None else (props.run_llm if props is not None else None)
        if props is not None and props.on_context_updated is not None:
            await self._context_updated(props.on_context_updated)
        if batch.interrupted:
            return  # the caller talked: their turn runs the LLM, with this result in the context
        if run_llm or (run_llm is None and not batch.pending):
            if batch is self._batch and not batch.pending:
                self._batch = None
            await self.push_context_frame()

    async def _context_updated(self, callback: Any) -> None:
        try:
            async with asyncio.timeout(self._params.on_context_updated_timeout_secs):
                result = callback()
                if inspect.isawaitable(result):
                    await result
        except TimeoutError:
            logger.warning("- %s: on_context_updated did not return in time", self.name)
        except Exception:
            logger.exception("! %s: on_context_updated raised", self.name)

    def _on_call_cancelled(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is None:
            return
        call.batch.interrupted = True
        if call_id in call.batch.pending:
            call.batch.pending.discard(call_id)
            call.tool_message["content"] = self._params.tool_cancelled

    def _interrupt_calls(self, batch: _Batch) -> None:
        batch.interrupted = True
        for call_id in list(batch.pending):
            call = self._calls.get(call_id)
            if call is not None and call.cancel_on_interruption:
                batch.pending.discard(call_id)
                call.tool_message["content"] = self._params.tool_cancelled


def _arguments_json(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments if arguments is not None else {}, default=str)


def _result_content(result: Any) -> str:
    if isinstance(result, str):
        return result
    return json.dumps(result, default=str)
