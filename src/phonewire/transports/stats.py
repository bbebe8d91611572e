"""Per-call counters: what a transport saw and did, for logs, tests and /metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from phonewire.transports.call_state import HangupSkip

__all__ = ["TransportStats", "TurnList"]

#: Send-lead samples kept per call (one a second while the bot speaks: a long call keeps its latest).
MAX_LEAD_SAMPLES = 600


class TurnList(list[Any]):
    """``stats.turns``, which tells ``listener`` of each turn as the output transport adds it.

    Why: the server's metrics and tracing want a turn when it completes, not at call end, and
    the output transport should not know about either; one ``None`` check per turn is the cost.
    """

    listener: Callable[[Any], None] | None = None

    def append(self, turn: Any) -> None:
        super().append(turn)
        if self.listener is not None:
            self.listener(turn)


@dataclass(slots=True)
class TransportStats:
    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    audio_in_ms: float = 0.0
    audio_out_ms: float = 0.0
    protocol_errors: Counter[str] = field(default_factory=Counter)
    internal_errors: int = 0
    send_failures: int = 0
    underruns: int = 0
    interruptions: int = 0
    clears_sent: int = 0
    dropped_audio_ms: float = 0.0
    marks_sent: int = 0
    marks_acked: int = 0
    dtmf_in: int = 0
    #: The hang-up's outcome (``HangupOutcome`` value) or ``"skipped: <why>"``.
    hangup: str | None = None
    #: Why it was skipped, as a key (None: not skipped, or not decided yet).
    hangup_skip: HangupSkip | None = None
    #: Why the connection closed, as text (``CloseReason`` value, maybe with detail).
    close_reason: str | None = None
    #: Answered caller turns with their latency breakdown (transports/turn_latency.py).
    turns: TurnList = field(default_factory=TurnList)
    #: Seconds of audio sent ahead of the caller's playout, sampled by the watchdog while the
    #: bot speaks (the pacer's real lead: near 0 or negative means sends are arriving late).
    send_lead_samples: list[float] = field(default_factory=list)

    @property
    def protocol_error_count(self) -> int:
        return sum(self.protocol_errors.values())

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["protocol_errors"] = dict(self.protocol_errors)
        d.pop("send_lead_samples")
        d["turns"] = [{"index": t.index, "stages": dict(t.stages), "heard_by": t.heard_source} for t in self.turns]
        return d
