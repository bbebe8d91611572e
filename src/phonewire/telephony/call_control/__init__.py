"""Call control on every provider: transfer, DTMF, outbound calls, callbacks (docs/call-control.md).

Sans-I/O request builders per provider (``twilio``, ``telnyx``, ``plivo``, ``vonage``; Exotel
has no live-call API), a thin bounded client (``client.perform``), a per-call
``CallController`` and ``place_call`` for outbound calls.
"""

from phonewire.telephony.call_control.base import (
    CallTarget,
    ControlOutcome,
    ControlRequest,
    ControlResponse,
    Unsupported,
)
from phonewire.telephony.call_control.client import perform
from phonewire.telephony.call_control.controller import CallController

__all__ = [
    "CallController",
    "CallTarget",
    "ControlOutcome",
    "ControlRequest",
    "ControlResponse",
    "Unsupported",
    "perform",
]
