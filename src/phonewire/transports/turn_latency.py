"""Per-turn latency as a breakdown, not a guess (sans-I/O: times are passed in).

A caller turn's clock starts when the caller *stopped speaking*: the VAD's stop moment
minus its ``stop_secs`` of confirming silence. Stages are seconds from there:

=====================  =============================================================
``vad_stop``           the VAD confirmed the silence (its ``stop_secs`` wait)
``transcript``         the STT's final text for the turn (``LatencyStageFrame``)
``turn_end``           the user aggregator ran the LLM (``LatencyStageFrame``)
``llm_first_token``    the LLM's first token (``LatencyStageFrame``)
``tts_first_byte``     the TTS's first audio byte (``LatencyStageFrame``)
``first_audio_sent``   the output transport sent the reply's first packet
``first_audio_heard``  the provider acknowledged playing it (the mark's echo time minus
                       the mark's position), or the send clock where there are no acks
=====================  =============================================================

The output transport feeds this tracker with the frames that pass it and its own sends
and acks; a finished turn becomes a ``TurnLatencyMetricsData``, a log line, and an entry
in ``transport.stats.turns``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["STAGES", "TurnLatencyTracker", "TurnRecord"]

STAGES = (
    "vad_stop",
    "transcript",
    "turn_end",
    "llm_first_token",
    "tts_first_byte",
    "first_audio_sent",
    "first_audio_heard",
)
#: Turns kept per call for stats and reports (a long call keeps its most recent ones).
MAX_TURNS_KEPT = 200


@dataclass(slots=True)
class TurnRecord:
    index: int
    caller_stopped_at: float
    stages: dict[str, float] = field(default_factory=dict)
    heard_source: str | None = None
    interrupted: bool = False

    @property
    def response_secs(self) -> float | None:
        """Caller stopped -> first bot audio heard: what the caller waits."""
        return self.stages.get("first_audio_heard")

    def describe(self) -> str:
        parts = [f"{name} {1000 * self.stages[name]:.0f}" for name in STAGES if name in self.stages]
        return ", ".join(parts) + " ms"


class TurnLatencyTracker:
    def __init__(self) -> None:
        self.turns: deque[TurnRecord] = deque(maxlen=MAX_TURNS_KEPT)
        self.current: TurnRecord | None = None
        self._count = 0

    def caller_stopped(self, now: float, stop_secs: float) -> TurnRecord | None:
        """A caller turn ended; returns the previous turn if it was still open (unanswered)."""
        previous = self._close()
        self._count += 1
        self.current = TurnRecord(index=self._count, caller_stopped_at=now - stop_secs)
        self.current.stages["vad_stop"] = stop_secs
        return previous

    def stage(self, name: str, at: float) -> None:
        """Record a stage once per turn (the first occurrence is the one that counts)."""
        turn = self.current
        if turn is not None and name not in turn.stages:
            turn.stages[name] = max(0.0, at - turn.caller_stopped_at)

    def waiting_for_audio(self) -> bool:
        return self.current is not None and "first_audio_sent" not in self.current.stages

    def waiting_for_heard(self) -> bool:
        turn = self.current
        return turn is not None and "first_audio_sent" in turn.stages and "first_audio_heard" not in turn.stages

    def heard(self, at: float, source: str) -> TurnRecord | None:
        """The reply's first audio was heard at ``at``: the turn is complete and returned."""
        turn = self.current
        if turn is None or not self.waiting_for_heard():
            return None
        sent = turn.caller_stopped_at + turn.stages["first_audio_sent"]
        self.stage("first_audio_heard", max(at, sent))
        turn.heard_source = source
        return self._close()

    def interrupted(self) -> None:
        if self.current is not None:
            self.current.interrupted = True

    def _close(self) -> TurnRecord | None:
        turn, self.current = self.current, None
        if turn is not None:
            self.turns.append(turn)
        return turn
