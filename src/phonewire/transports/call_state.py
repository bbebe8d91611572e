"""The call's lifecycle as one state machine, and why a call closed, as enums. Sans-I/O.

``FastAPIWebsocketTransport`` owns one ``CallLifecycle`` and changes its state only through
``FastAPIWebsocketTransport._transition`` (which mirrors ``closed`` for the per-packet path
and logs each transition at debug). Every legal move is in ``TRANSITIONS``; any other raises
``IllegalTransition``::

                 EndFrame at the output          queued audio played / drain timeout
      OPEN ───────────────────────────► DRAINING ────────────────────────────► ENDING
       │ │ │                                │                       (hang-up, ≤ 2 s)│
       │ │ └── pipeline cancelled ─────────────────────────────────────────► ENDING │
       │ └──── peer gone / close() ─────────┴─────────────────────────────────────────┴─► CLOSED
       │                                                                                 │
       └─ socket lost, call held ─► HELD ◄── socket lost ── ABORTING ◄── abort()/detach()┘
          (resume_window_secs)       │ │                      │  ▲        (after close)
                                     │ └─ window over / stop ─┘  │
                                     └─── resume() ─► OPEN       └─ peer_gone() ─► CLOSED

* ``OPEN``: the call is live (from construction: the handshake happened in the route).
* ``DRAINING``: ``EndFrame`` reached the output, which waits for the queued audio to play.
  The input still reads, so a caller hanging up now is a disconnect.
* ``ENDING``: we end the call (hang-up running, socket about to close); a provider ``stop`` or
  close now is the answer to our hang-up, not the caller leaving.
* ``ABORTING``: we closed the socket because of the peer (a limit, no media, a replaced
  stream); what a peer leaving does (``on_client_disconnected``, cancel) is still to run.
* ``HELD``: the socket dropped and the call waits ``resume_window_secs`` for a reconnect.
* ``CLOSED``: nothing more is sent or handled.

``OPEN``, ``DRAINING`` and ``ENDING`` may send; the other three are ``closed``. The values are
the strings the state used to be (``transport.state == "closed"`` still reads as it did).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "CALL_OVER",
    "PEER_CLOSED",
    "TRANSITIONS",
    "CallLifecycle",
    "CallState",
    "CloseReason",
    "HangupSkip",
    "IllegalTransition",
]


class CallState(StrEnum):
    OPEN = "open"
    DRAINING = "draining"
    ENDING = "ending"
    ABORTING = "aborting"
    HELD = "held"
    CLOSED = "closed"

    @property
    def closed(self) -> bool:
        """Nothing may be sent in this state."""
        return self in _SHUT


_SHUT = frozenset({CallState.ABORTING, CallState.HELD, CallState.CLOSED})

TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    CallState.OPEN: frozenset({CallState.DRAINING, CallState.ENDING, CallState.HELD, CallState.CLOSED}),
    CallState.DRAINING: frozenset({CallState.ENDING, CallState.CLOSED}),
    CallState.ENDING: frozenset({CallState.CLOSED}),
    # abort()/detach() close first, then hand over to peer_gone through ABORTING.
    CallState.CLOSED: frozenset({CallState.ABORTING}),
    CallState.ABORTING: frozenset({CallState.HELD, CallState.CLOSED}),
    CallState.HELD: frozenset({CallState.OPEN, CallState.ABORTING, CallState.CLOSED}),
}


class IllegalTransition(RuntimeError):
    """A move the lifecycle does not have (a bug in the transport, never the peer's doing)."""

    def __init__(self, current: CallState, target: CallState) -> None:
        super().__init__(f"call state {current} cannot become {target}")
        self.current, self.target = current, target


class CallLifecycle:
    """The current ``CallState`` and the one way to change it."""

    __slots__ = ("state",)

    def __init__(self, state: CallState = CallState.OPEN) -> None:
        self.state = state

    def can(self, target: CallState) -> bool:
        return target in TRANSITIONS[self.state]

    def transition(self, target: CallState) -> CallState:
        """Move to ``target``; returns the state left. Raises ``IllegalTransition``."""
        current = self.state
        if target not in TRANSITIONS[current]:
            raise IllegalTransition(current, target)
        self.state = target
        return current


class CloseReason(StrEnum):
    """Why the connection closed: the key decisions are made on. ``stats.close_reason`` keeps
    the text (which may add detail: ``"receive failed (OSError)"``, ``"transferred to +1…"``)."""

    STOP = "stop"  # the provider's stop message: the call ended
    CLIENT_DISCONNECTED = "client disconnected"  # the peer closed the socket
    RECEIVE_FAILED = "receive failed"  # reading failed: the connection died
    SEND_FAILED = "send failed"
    SEND_TIMEOUT = "send timeout"  # the peer stopped reading (ws_send_timeout)
    NO_MEDIA = "no media"  # silent past no_media_timeout_secs
    MESSAGE_TOO_BIG = "message too big"  # max_message_bytes: close 1009
    MESSAGE_RATE = "message rate"  # max_messages_per_second: close 1008
    TRANSFERRED = "transferred"  # the provider ended our stream after a transfer
    REPLACED = "replaced"  # detach(): another stream took the call over
    PIPELINE_ENDED = "pipeline ended"
    PIPELINE_CANCELLED = "pipeline cancelled"
    PIPELINE_FINISHED = "pipeline finished"  # cleanup
    CLOSED = "closed"  # close() with the application's own reason


#: The call is over on the provider's side: no hang-up is sent.
CALL_OVER = frozenset({CloseReason.STOP, CloseReason.CLIENT_DISCONNECTED, CloseReason.SEND_FAILED})
#: The peer's side closed the connection (rather than us, for its behaviour).
PEER_CLOSED = frozenset({CloseReason.CLIENT_DISCONNECTED, CloseReason.RECEIVE_FAILED})


class HangupSkip(StrEnum):
    """Why no REST hang-up was sent (``stats.hangup_skip``; ``stats.hangup`` has the text)."""

    TRANSFERRED = "transferred"
    CALL_OVER = "call already ended"
    NOT_VERIFIED = "call id not verified"
    REPLACED = "stream replaced"
    INVALID_ID = "invalid id"  # the serializer's ids are malformed (hangup_skip_reason "invalid …")
    UNAVAILABLE = "unavailable"  # the serializer cannot hang up (off, credentials missing)
