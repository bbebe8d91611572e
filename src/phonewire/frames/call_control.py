"""Frames for controlling the phone call itself: hand it to a person, learn who answered.

``TransferCallFrame`` travels downstream behind the bot's audio, so by the time the output
transport acts on it everything said before it has been queued; the transport waits until
that audio has *played* (the provider's acknowledgement), then asks the provider to move the
call, and reports the outcome on ``result`` (the ``transfer_call`` tool waits on it and tells
the LLM). It survives interruptions: a caller talking over the announcement must not cancel
the hand-off they asked for.

``AnsweringMachineFrame`` and ``CallStatusFrame`` carry what the provider's signed callbacks
said about this call (answering-machine detection, ringing/answered/busy...), pushed into the
call's pipeline by the server's callback routes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from phonewire.frames.core import ControlFrame, SystemFrame, UninterruptibleFrame

__all__ = ["AnsweringMachineFrame", "CallStatusFrame", "TransferCallFrame", "TransferResult"]


@dataclass(frozen=True, slots=True)
class TransferResult:
    """How a transfer request went. ``detail`` is safe to show the LLM (no credentials)."""

    ok: bool
    to: str
    detail: str = ""
    warm: bool = False


@dataclass(slots=True, kw_only=True)
class TransferCallFrame(ControlFrame, UninterruptibleFrame):
    """Hand the call to ``to`` (E.164 number or SIP URI) once queued audio has played.

    ``warm``: where the provider can conference (Twilio), dial the person first, brief them
    with ``summary``, and move the caller only once they joined. ``caller_id``: the number
    shown to the person (defaults to the provider's choice). ``result`` resolves with a
    ``TransferResult``; None when nobody waits for it."""

    to: str
    warm: bool = False
    summary: str | None = None
    caller_id: str | None = None
    result: asyncio.Future[TransferResult] | None = field(default=None, repr=False)


@dataclass(slots=True, kw_only=True)
class AnsweringMachineFrame(SystemFrame):
    """The provider's answering-machine verdict for this call.

    ``result``: "human", "machine", "fax" or "unknown"; ``detail`` the provider's own value
    (Twilio ``machine_end_beep``, Telnyx ``not_sure``...), ``beep`` True when the greeting
    ended (a message left now is recorded whole)."""

    result: str
    detail: str = ""
    beep: bool = False
    provider: str = ""


@dataclass(slots=True, kw_only=True)
class CallStatusFrame(SystemFrame):
    """A call-progress event: "initiated", "ringing", "answered", "completed", "busy",
    "no-answer", "failed" or "canceled" (the provider's value in ``detail``)."""

    status: str
    detail: str = ""
    provider: str = ""
    raw: dict[str, Any] | None = field(default=None, repr=False)
