"""A call's outcome label comes from the transport's close cause (an enum), not its text."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from phonewire.serializers.base import CallInfo, MediaFormat
from phonewire.server.lifecycle import ActiveCall, call_outcome
from phonewire.transports.call_state import CloseReason


def _call(cause: CloseReason | None, text: str | None = None) -> ActiveCall:
    transport = SimpleNamespace(close_cause=cause, stats=SimpleNamespace(close_reason=text or (cause and str(cause))))
    fmt = MediaFormat("mulaw", 8000)
    info = CallInfo(provider="twilio", call_id="CA" + "0" * 32, stream_id="MZ1", media_format=fmt)
    return ActiveCall(transport=transport, info=info, started_at=0.0, started_ns=0, task=None)


@pytest.mark.parametrize(
    ("cause", "text", "outcome"),
    [
        (CloseReason.STOP, None, "caller_hung_up"),
        (CloseReason.CLIENT_DISCONNECTED, None, "caller_hung_up"),
        (CloseReason.RECEIVE_FAILED, "receive failed (OSError)", "peer_lost"),  # was "completed"
        (CloseReason.NO_MEDIA, None, "peer_lost"),
        (CloseReason.MESSAGE_RATE, None, "protocol_error"),
        (CloseReason.MESSAGE_TOO_BIG, None, "protocol_error"),
        (CloseReason.TRANSFERRED, "transferred to +15550001111", "transferred"),
        (CloseReason.PIPELINE_CANCELLED, None, "cancelled"),
        (CloseReason.PIPELINE_ENDED, None, "completed"),
        (None, None, "completed"),
    ],
)
def test_outcome_by_close_cause(cause: CloseReason | None, text: str | None, outcome: str) -> None:
    assert call_outcome(_call(cause, text)) == outcome


def test_bot_error_and_server_ending_win() -> None:
    call = _call(CloseReason.STOP)
    call.ended_by = "drained"
    assert call_outcome(call) == "drained"
    call.bot_error = True
    assert call_outcome(call) == "bot_error"
