"""What every provider's call-control builder produces: a described REST request.

Builders are sans-I/O, like the serializers' hang-up: they turn (where the call lives, what
to do) into a ``ControlRequest`` and a provider's answer into a ``ControlOutcome``; the thin
client in ``client.py`` sends it (bounded, one retry). ``CallTarget`` is where a live call
lives on its provider's REST API, taken from the call's serializer only after the stream
token verified the call id, so a forged ``start`` never steers a transfer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = [
    "CallTarget",
    "ControlOutcome",
    "ControlRequest",
    "ControlResponse",
    "Unsupported",
    "default_interpret",
]


class Unsupported(Exception):
    """The provider has no API for this action (the message says which and why)."""


class ControlOutcome(Enum):
    DONE = "done"
    RETRY = "retry"  # 429 / 5xx / network: one retry
    GONE = "gone"  # the call already ended
    FAILED = "failed"  # 4xx: retrying will not help


def default_interpret(status: int, body: bytes) -> ControlOutcome:
    if 200 <= status < 300:
        return ControlOutcome.DONE
    if status == 429 or status >= 500:
        return ControlOutcome.RETRY
    if status == 404:
        return ControlOutcome.GONE
    return ControlOutcome.FAILED


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """One REST request, described. ``action`` names it in logs ("transfer", "dtmf", ...)."""

    action: str
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    form: dict[str, str | list[str]] | None = None
    json: Any = None
    interpret: Callable[[int, bytes], ControlOutcome] = field(default=default_interpret, repr=False)


@dataclass(frozen=True, slots=True)
class ControlResponse:
    """What came back: the outcome, the HTTP status (0: no answer) and the parsed JSON body."""

    outcome: ControlOutcome
    status: int = 0
    body: Any = None

    @property
    def ok(self) -> bool:
        return self.outcome is ControlOutcome.DONE

    @staticmethod
    def parse(outcome: ControlOutcome, status: int, content: bytes) -> ControlResponse:
        try:
            body = json.loads(content) if content else None
        except (ValueError, RecursionError):
            body = None
        return ControlResponse(outcome, status, body)


@dataclass(frozen=True, slots=True)
class CallTarget:
    """A verified live call on its provider's REST API.

    ``call_url``: the call resource (Twilio ``.../Calls/{sid}.json``, Telnyx
    ``.../v2/calls/{id}``, Plivo ``.../Call/{uuid}/``, Vonage ``.../v1/calls/{uuid}``), its
    ids already matched to the provider's formats and quoted. ``headers``: the provider's
    authentication. ``api_root`` and ``account`` serve requests that create calls."""

    provider: str
    call_id: str
    call_url: str
    api_root: str
    headers: dict[str, str] = field(repr=False)
    account: str = ""
