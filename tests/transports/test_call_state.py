"""The call lifecycle machine, sans-I/O: every legal move, every other move refused; and
the transport moving through it."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from phonewire.serializers.twilio import TwilioFrameSerializer
from phonewire.transports import FastAPIWebsocketParams, FastAPIWebsocketTransport
from phonewire.transports.call_state import (
    CALL_OVER,
    PEER_CLOSED,
    TRANSITIONS,
    CallLifecycle,
    CallState,
    CloseReason,
    HangupSkip,
    IllegalTransition,
)

S = CallState
LEGAL = {
    (S.OPEN, S.DRAINING),  # EndFrame at the output
    (S.OPEN, S.ENDING),  # pipeline cancelled
    (S.OPEN, S.HELD),  # socket lost, resume window
    (S.OPEN, S.CLOSED),  # peer gone, close()
    (S.DRAINING, S.ENDING),  # played out (or drain timeout)
    (S.DRAINING, S.CLOSED),  # the caller hung up during the goodbye
    (S.ENDING, S.CLOSED),
    (S.CLOSED, S.ABORTING),  # abort()/detach(): closed for the peer's sake
    (S.ABORTING, S.HELD),  # no media on a resumable call
    (S.ABORTING, S.CLOSED),  # peer_gone ran
    (S.HELD, S.OPEN),  # resume()
    (S.HELD, S.ABORTING),  # window over, or the old socket said stop
    (S.HELD, S.CLOSED),  # cleanup while held
}


def test_the_table_is_exactly_the_documented_moves() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == LEGAL
    assert set(TRANSITIONS) == set(CallState)


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_legal_moves_are_made(current: CallState, target: CallState) -> None:
    machine = CallLifecycle(current)
    assert machine.can(target)
    assert machine.transition(target) is current
    assert machine.state is target


@pytest.mark.parametrize(("current", "target"), sorted(set(itertools.product(CallState, CallState)) - LEGAL))
def test_other_moves_are_refused_and_leave_the_state_alone(current: CallState, target: CallState) -> None:
    machine = CallLifecycle(current)
    assert not machine.can(target)
    with pytest.raises(IllegalTransition) as info:
        machine.transition(target)
    assert machine.state is current
    assert (info.value.current, info.value.target) == (current, target)


def test_a_call_starts_open_and_only_open_draining_ending_may_send() -> None:
    assert CallLifecycle().state is S.OPEN
    assert {s for s in CallState if not s.closed} == {S.OPEN, S.DRAINING, S.ENDING}


def test_closed_is_reachable_from_every_state_and_open_from_held_only() -> None:
    reach: dict[CallState, set[CallState]] = {s: {s} for s in CallState}
    for _ in CallState:
        for s in CallState:
            for t in TRANSITIONS[s]:
                reach[s] |= reach[t]
    assert all(S.CLOSED in r for r in reach.values())
    assert {s for s, targets in TRANSITIONS.items() if S.OPEN in targets} == {S.HELD}


def test_states_and_reasons_read_as_the_strings_they_replace() -> None:
    assert S.CLOSED == "closed" and S.DRAINING == "draining" and f"{S.ENDING}" == "ending"
    assert "stop" in CALL_OVER and "send failed" in CALL_OVER and "send timeout" not in CALL_OVER
    assert CloseReason.RECEIVE_FAILED in PEER_CLOSED and CloseReason.STOP not in PEER_CLOSED


# --- the transport drives the machine ------------------------------------------------------


class _Socket:
    """Enough of a Starlette WebSocket for close(): already disconnected, nothing to send."""

    application_state = None
    scope: dict[str, object] = {}


def _transport() -> FastAPIWebsocketTransport:
    params = FastAPIWebsocketParams(serializer=TwilioFrameSerializer("MZ"))
    return FastAPIWebsocketTransport(_Socket(), params)  # type: ignore[arg-type]


def test_an_abort_passes_through_aborting_and_ends_closed_as_a_disconnect(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> tuple[list[str], CloseReason | None, str | None]:
        transport = _transport()
        fired: list[str] = []
        transport.add_event_handler("on_client_disconnected", lambda t, ws: fired.append("gone"))
        transport.hangup_allowed = False
        await transport.abort(1009, CloseReason.MESSAGE_TOO_BIG)
        await transport.cleanup()
        return fired, transport.close_cause, transport.stats.close_reason

    with caplog.at_level(logging.DEBUG, logger="phonewire.transport"):
        fired, cause, text = asyncio.run(main())
    moves = [r.getMessage().split("= state ")[1] for r in caplog.records if "= state " in r.getMessage()]
    assert moves == ["open -> closed", "closed -> aborting", "aborting -> closed"] and fired == ["gone"]
    assert cause is CloseReason.MESSAGE_TOO_BIG and text == "message too big"


def test_a_stop_is_no_hang_up_and_a_replaced_stream_says_so() -> None:
    async def main() -> list[tuple[object, ...]]:
        out: list[tuple[object, ...]] = []
        stopped = _transport()
        await stopped.stream_stopped()
        stopped.start_hangup()
        out.append((stopped.state, stopped.close_cause, stopped.stats.hangup_skip, stopped.stats.hangup))
        replaced = _transport()
        await replaced.detach("replaced by a new stream")
        replaced.start_hangup()
        out.append((replaced.state, replaced.close_cause, replaced.stats.hangup_skip, replaced.stats.close_reason))
        for t in (stopped, replaced):
            await t.cleanup()
        return out

    stop, replaced = asyncio.run(main())
    assert stop == (S.CLOSED, CloseReason.STOP, HangupSkip.CALL_OVER, "skipped: call already ended")
    assert replaced == (S.CLOSED, CloseReason.REPLACED, HangupSkip.REPLACED, "replaced by a new stream")
