"""LLMService: what every LLM vendor shares - function calling and the audible failure policy.

Function calls run as owned tasks, not inside ``process_frame``: a reply that ends in tool
calls is finished when its frames are pushed, the service is free for the next context, and
an interruption cancels only the handlers registered with ``cancel_on_interruption=True``.
Each call ends in exactly one ``FunctionCallResultFrame`` (downstream, for the assistant
aggregator, which re-runs the LLM when the reply's last call is answered - we never re-run).

Failures are heard: when a turn cannot be answered the caller hears ``apology`` (a
``TTSSpeakFrame`` kept out of the context), an ``ErrorFrame`` goes upstream (not fatal) and
``error_counts[kind]`` grows; the next turn runs normally.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from phonewire.frames import (
    CancelFrame,
    ErrorFrame,
    Frame,
    FrameDirection,
    FunctionCallCancelFrame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    FunctionCallResultProperties,
    FunctionCallsStartedFrame,
    InputAudioRawFrame,
    InterruptionFrame,
    LatencyStageFrame,
    TTSSpeakFrame,
)
from phonewire.processors.frame_processor import FrameProcessor
from phonewire.services.function_calls import (
    FunctionCallHandler,
    FunctionCallParams,
    FunctionCallRegistryItem,
    RequestedCall,
    RunningFunctionCall,
)

__all__ = ["DEFAULT_APOLOGY", "FunctionCallParams", "LLMService"]

logger = logging.getLogger("phonewire.services.llm")

DEFAULT_APOLOGY = "Sorry, I'm having trouble right now. Could you say that again?"
#: Result given to the LLM for a call cancelled by the caller's barge-in.
CANCELLED_RESULT = {"error": "Cancelled: the caller interrupted before the function finished."}


class LLMService(FrameProcessor):
    """Base of LLM services. Subclasses run a generation per context and call
    ``run_function_calls`` with the calls a reply asked for, ``fail_turn`` when a turn fails."""

    def __init__(
        self,
        *,
        apology: str | None = DEFAULT_APOLOGY,
        function_call_timeout_secs: float = 10.0,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.apology = apology
        self.function_call_timeout_secs = function_call_timeout_secs
        self._functions: dict[str | None, FunctionCallRegistryItem] = {}
        self._running: dict[str, RunningFunctionCall] = {}
        #: Bumped by every interruption: output of an older generation is never pushed.
        self._generation = 0
        self.error_counts: Counter[str] = Counter()
        self.apology_count = 0

    @property
    def error_count(self) -> int:
        """Failures of any kind so far (request attempts, function calls)."""
        return sum(self.error_counts.values())

    # --- registry (Pipecat's names) ----------------------------------------------------

    def register_function(
        self,
        function_name: str | None,
        handler: FunctionCallHandler,
        *,
        cancel_on_interruption: bool = True,
        timeout_secs: float | None = None,
    ) -> None:
        """``handler(params)`` answers calls of ``function_name`` (None: any unregistered one)."""
        if not callable(handler):
            raise TypeError("handler must be an async callable taking FunctionCallParams")
        self._functions[function_name] = FunctionCallRegistryItem(
            function_name=function_name,
            handler=handler,
            cancel_on_interruption=cancel_on_interruption,
            timeout_secs=timeout_secs,
        )

    def unregister_function(self, function_name: str | None) -> None:
        self._functions.pop(function_name, None)

    def has_function(self, function_name: str) -> bool:
        return function_name in self._functions or None in self._functions

    # --- frames ------------------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if frame.__class__ is InputAudioRawFrame:  # the caller's audio, 50 a second: passed on as is
            await self.push_frame(frame, direction)
            return
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame):
            self._generation += 1
            await self.push_frame(frame, direction)
            await self._cancel_function_calls(only_interruptible=True)
            return
        if isinstance(frame, CancelFrame):
            await self._cancel_function_calls(only_interruptible=False, report=False)
        await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        await self._cancel_function_calls(only_interruptible=False, report=False)
        await super().cleanup()

    def is_current(self, generation: int) -> bool:
        """True while output of ``generation`` may still be pushed (no interruption since)."""
        task = asyncio.current_task()
        return generation == self._generation and not (task is not None and task.cancelling())

    async def push_first_token_stage(self) -> None:
        await self.push_frame(LatencyStageFrame(stage="llm_first_token", at=time.monotonic(), processor=self.name))

    # --- failures ----------------------------------------------------------------------

    def count_error(self, kind: str, detail: str) -> None:
        self.error_counts[kind] += 1
        logger.warning("! %s %s: %s", self.name, kind, detail)

    async def fail_turn(self, kind: str, detail: str) -> None:
        """The turn could not be answered: ErrorFrame upstream, then the apology downstream."""
        await self.push_frame(ErrorFrame(error=f"{self.name}: {kind}: {detail}", fatal=False), FrameDirection.UPSTREAM)
        if self.apology:
            self.apology_count += 1
            await self.push_frame(TTSSpeakFrame(text=self.apology, append_to_context=False))

    # --- function calls ----------------------------------------------------------------

    async def run_function_calls(self, calls: Sequence[RequestedCall], context: Any) -> None:
        """Announce the calls, then run them (concurrently, each in an owned task)."""
        await self.announce_function_calls(calls)
        self.start_function_calls(calls, context)

    async def announce_function_calls(self, calls: Sequence[RequestedCall]) -> None:
        """FunctionCallsStartedFrame, then a FunctionCallInProgressFrame per call (downstream:
        the assistant aggregator records the assistant ``tool_calls`` message from them).

        The in-progress frame's ``metadata["tool_call"]`` is the call exactly as streamed
        (Gemini's ``extra_content`` included) for an aggregator that echoes it verbatim."""
        if not calls:
            return
        await self.push_frame(FunctionCallsStartedFrame(function_calls=[r.call for r in calls]))
        for requested in calls:
            call = requested.call
            frame = FunctionCallInProgressFrame(
                function_name=call.function_name,
                tool_call_id=call.tool_call_id,
                arguments=call.arguments,
                cancel_on_interruption=self._item(call.function_name).cancel_on_interruption,
                metadata={"tool_call": requested.message_call} if requested.message_call else None,
            )
            await self.push_frame(frame)

    def start_function_calls(self, calls: Sequence[RequestedCall], context: Any) -> None:
        """One owned task per call. A call with a ``problem`` (arguments that are not a JSON
        object) or no handler is answered with an error: every tool_call_id needs an answer."""
        for requested in calls:
            call = requested.call
            item = self._functions.get(call.function_name) or self._functions.get(None)
            settings = self._item(call.function_name)
            state = RunningFunctionCall(
                function_name=call.function_name,
                tool_call_id=call.tool_call_id,
                arguments=call.arguments,
                cancel_on_interruption=settings.cancel_on_interruption,
                timeout_secs=settings.timeout_secs or self.function_call_timeout_secs,
                deliver=self._deliver_result,
                on_error=self.count_error,
            )
            self._start_call(state, item, requested.problem, context)

    def _item(self, function_name: str) -> FunctionCallRegistryItem:
        item = self._functions.get(function_name) or self._functions.get(None)
        return item or FunctionCallRegistryItem(function_name=function_name, handler=_no_handler)

    def _start_call(
        self, state: RunningFunctionCall, item: FunctionCallRegistryItem | None, problem: str | None, context: Any
    ) -> None:
        if problem is None and item is None:
            problem = f"unknown function {state.function_name!r}"
        if problem is not None:
            self.count_error("function_arguments" if item else "function_unknown", f"{state.tool_call_id}: {problem}")
            error = {"error": f"The call to {state.function_name} was not run: {problem}."}
            coro = state.result_callback(error)
        else:
            assert item is not None
            params = FunctionCallParams(
                function_name=state.function_name,
                tool_call_id=state.tool_call_id,
                arguments=state.arguments,
                llm=self,
                context=context,
                result_callback=state.result_callback,
            )
            coro = state.run(item.handler, params)
        self._running[state.tool_call_id] = state
        task = asyncio.get_running_loop().create_task(self._own(state, coro), name=f"{self.name}:{state.function_name}")
        state.task = task

    async def _own(self, state: RunningFunctionCall, coro: Any) -> None:
        try:
            await coro
        finally:
            if self._running.get(state.tool_call_id) is state:
                del self._running[state.tool_call_id]

    async def _deliver_result(
        self, state: RunningFunctionCall, result: Any, properties: FunctionCallResultProperties | None
    ) -> None:
        frame = FunctionCallResultFrame(
            function_name=state.function_name,
            tool_call_id=state.tool_call_id,
            arguments=state.arguments,
            result=result,
            run_llm=properties.run_llm if properties else None,
            properties=properties,
        )
        await self.push_frame(frame)

    async def _cancel_function_calls(self, *, only_interruptible: bool, report: bool = True) -> None:
        victims = [s for s in self._running.values() if s.cancel_on_interruption or not only_interruptible]
        for state in victims:
            self._running.pop(state.tool_call_id, None)
            due = await state.cancel()
            if not (report and due):
                continue
            logger.debug("- %s cancelled function %s (%s)", self.name, state.function_name, state.tool_call_id)
            await self.push_frame(
                FunctionCallCancelFrame(function_name=state.function_name, tool_call_id=state.tool_call_id)
            )
            properties = FunctionCallResultProperties(run_llm=False)
            await self._deliver_result(state, CANCELLED_RESULT, properties)


async def _no_handler(params: FunctionCallParams) -> Any:  # pragma: no cover - never run
    raise LookupError(params.function_name)
