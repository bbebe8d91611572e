"""Ready LLM tools for the phone call itself: ``transfer_call``, ``end_call``, ``send_dtmf``.

::

    tools = register_call_control(llm, transport, destinations={"sales": "+14155550100"})
    context = LLMContext(messages, tools=[*my_tools, *tools])

Why these shapes:

* **The LLM never dials a number it made up.** ``transfer_call`` takes a destination *name*
  from ``destinations`` (an enum in the schema); a prompt-injected caller cannot make the bot
  call a premium-rate number.
* **What the caller hears comes first.** The announcement (``TTSSpeakFrame``) and then a
  ``TransferCallFrame`` go down the pipeline in order; the output transport sends the
  transfer request only after the provider acknowledged playing the announcement. On success
  the tool answers with ``run_llm=False`` and ends the pipeline (``EndTaskFrame``: the
  transport skips its hang-up, the call is elsewhere); on failure the tool result says so
  and the LLM runs again to apologise and keep helping.
* **Goodbyes are heard.** ``end_call`` ends the pipeline with ``EndTaskFrame``: the EndFrame
  follows everything already generated, so a reply cut by the tool call mid-sentence plays
  out, then the optional ``goodbye``, then the transport's graceful hang-up.

Both are registered with ``cancel_on_interruption=False``: talking over the goodbye must not
leave the call open.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Any

from phonewire.frames import (
    AnsweringMachineFrame,
    EndFrame,
    EndTaskFrame,
    FrameDirection,
    FunctionCallResultProperties,
    TransferCallFrame,
    TransferResult,
    TTSSpeakFrame,
)
from phonewire.services.function_calls import FunctionCallParams
from phonewire.services.llm_service import LLMService

__all__ = ["DEFAULT_ANNOUNCEMENT", "CallControlTools", "leave_voicemail", "register_call_control"]

logger = logging.getLogger("phonewire.call_control")

DEFAULT_ANNOUNCEMENT = "Please hold while I connect you."
_DIGITS = re.compile(r"[0-9*#]{1,32}")
_NO_RERUN = FunctionCallResultProperties(run_llm=False)


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    parameters = {"type": "object", "properties": properties, "required": required}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


class CallControlTools:
    """The handlers and their OpenAI tool schemas for one call (``register_call_control``)."""

    def __init__(
        self,
        transport: Any,
        *,
        destinations: Mapping[str, str] | None = None,
        announcement: str | None = DEFAULT_ANNOUNCEMENT,
        goodbye: str | None = None,
        warm: bool = False,
        transfer_timeout_secs: float = 30.0,
    ) -> None:
        self.transport = transport
        self.destinations = dict(destinations or {})
        self.announcement = announcement
        self.goodbye = goodbye
        self.warm = warm
        self.transfer_timeout_secs = transfer_timeout_secs
        #: What each transfer attempt returned, in order (for logs and tests).
        self.transfers: list[TransferResult] = []

    # --- schemas -------------------------------------------------------------------------

    def schemas(self, *, dtmf: bool = False) -> list[dict[str, Any]]:
        schemas = [self.end_call_schema()]
        if self.destinations:
            schemas.insert(0, self.transfer_call_schema())
        if dtmf:
            schemas.append(self.send_dtmf_schema())
        return schemas

    def transfer_call_schema(self) -> dict[str, Any]:
        names = sorted(self.destinations)
        props: dict[str, Any] = {
            "destination": {"type": "string", "enum": names, "description": "Who to transfer the caller to."},
            "summary": {"type": "string", "description": "One or two sentences briefing the person on the call."},
        }
        description = "Transfer the caller to a person. Use it when the caller asks for a human or you cannot help."
        return _tool("transfer_call", description, props, ["destination"] if len(names) > 1 else [])

    @staticmethod
    def end_call_schema() -> dict[str, Any]:
        description = "End the phone call once the caller's request is done and you have said goodbye."
        return _tool("end_call", description, {}, [])

    @staticmethod
    def send_dtmf_schema() -> dict[str, Any]:
        props = {"digits": {"type": "string", "description": "Keys to press: 0-9, * and #."}}
        return _tool("send_dtmf", "Press keys on the phone keypad (to navigate a phone menu).", props, ["digits"])

    # --- handlers ------------------------------------------------------------------------

    def _destination(self, arguments: Mapping[str, Any]) -> tuple[str, str] | None:
        name = arguments.get("destination")
        if name is None and len(self.destinations) == 1:
            name = next(iter(self.destinations))
        number = self.destinations.get(name) if isinstance(name, str) else None
        return (name, number) if isinstance(name, str) and number else None

    async def transfer_call(self, params: FunctionCallParams) -> None:
        chosen = self._destination(params.arguments)
        if chosen is None:
            names = ", ".join(sorted(self.destinations)) or "none"
            await params.result_callback({"error": f"Unknown destination; choose one of: {names}."})
            return
        name, number = chosen
        llm: LLMService = params.llm
        done: asyncio.Future[TransferResult] = asyncio.get_running_loop().create_future()
        if self.announcement:
            await llm.push_frame(TTSSpeakFrame(text=self.announcement))
        summary = params.arguments.get("summary")
        frame = TransferCallFrame(
            to=number, warm=self.warm, summary=summary if isinstance(summary, str) else None, result=done
        )
        await llm.push_frame(frame)
        try:
            async with asyncio.timeout(self.transfer_timeout_secs):
                result = await done
        except TimeoutError:
            result = TransferResult(False, number, "no answer from the transfer in time")
        self.transfers.append(result)
        if result.ok:
            logger.info("= call transferred to %s", name)
            await params.result_callback({"status": "transferred", "destination": name}, properties=_NO_RERUN)
            await llm.push_frame(EndTaskFrame(reason=f"transferred to {name}"), FrameDirection.UPSTREAM)
            return
        logger.warning("- transfer to %s failed: %s", name, result.detail)
        await params.result_callback(
            {"error": f"The transfer to {name} failed ({result.detail}). Apologise and keep helping the caller."}
        )

    async def end_call(self, params: FunctionCallParams) -> None:
        llm: LLMService = params.llm
        if self.goodbye:
            await llm.push_frame(TTSSpeakFrame(text=self.goodbye))
        await params.result_callback({"status": "ending the call"}, properties=_NO_RERUN)
        await llm.push_frame(EndTaskFrame(reason="end_call"), FrameDirection.UPSTREAM)

    async def send_dtmf(self, params: FunctionCallParams) -> None:
        digits = params.arguments.get("digits")
        if not isinstance(digits, str) or not _DIGITS.fullmatch(digits):
            await params.result_callback({"error": "digits must be 1-32 of 0-9, * and #"})
            return
        ok, how, frame = await self.transport.call_control.send_dtmf(digits)
        if frame is not None:
            await params.llm.push_frame(frame)
        await params.result_callback({"status": "sent", "via": how} if ok else {"error": f"not sent: {how}"})


def register_call_control(
    llm: LLMService,
    transport: Any,
    *,
    destinations: Mapping[str, str] | None = None,
    announcement: str | None = DEFAULT_ANNOUNCEMENT,
    goodbye: str | None = None,
    warm: bool = False,
    dtmf: bool = False,
    transfer_timeout_secs: float = 30.0,
) -> list[dict[str, Any]]:
    """Register ``end_call`` (and ``transfer_call`` when ``destinations`` are given, and
    ``send_dtmf`` with ``dtmf=True``) on ``llm``; returns their OpenAI tool schemas.

    The handlers object is kept as ``llm.call_control_tools`` for inspection."""
    tools = CallControlTools(
        transport,
        destinations=destinations,
        announcement=announcement,
        goodbye=goodbye,
        warm=warm,
        transfer_timeout_secs=transfer_timeout_secs,
    )
    timeout = transfer_timeout_secs + 5
    if tools.destinations:
        llm.register_function("transfer_call", tools.transfer_call, cancel_on_interruption=False, timeout_secs=timeout)
    llm.register_function("end_call", tools.end_call, cancel_on_interruption=False)
    if dtmf:
        llm.register_function("send_dtmf", tools.send_dtmf, timeout_secs=15.0)
    llm.call_control_tools = tools  # type: ignore[attr-defined]
    return tools.schemas(dtmf=dtmf)


def leave_voicemail(transport: Any, task: Any, message: str) -> None:
    """The common answering-machine policy: on a "machine" verdict, say ``message`` and hang up.

    Registers an ``on_answering_machine`` handler on ``transport``; the message and an
    ``EndFrame`` are queued on ``task``, so the message follows what is already being said,
    plays out in full (the transport's graceful end), and then the call is hung up. A human
    verdict changes nothing. Providers that report the greeting's end (Twilio
    ``machine_end_*``, Telnyx ``greeting.ended``, Vonage ``beep_start``) send it once the beep
    has passed, so the message is recorded whole."""
    done = False

    async def on_machine(transport: Any, frame: AnsweringMachineFrame) -> None:
        nonlocal done
        if frame.result != "machine" or done:
            return
        done = True
        logger.info("= answering machine (%s %s): leaving the message", frame.provider, frame.detail)
        await task.queue_frames([TTSSpeakFrame(text=message), EndFrame(reason="voicemail left")])

    transport.add_event_handler("on_answering_machine", on_machine)
