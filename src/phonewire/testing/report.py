"""What a simulated call measured, and how to show it.

Every time is in seconds since the stream started (the ``start`` message), on the
handset's clock: caller times come from the send clock, bot times from the playout (when
the caller *heard* the bot, after the provider's queue), which is the latency a caller
perceives minus the carrier's own network and jitter-buffer delay.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from phonewire.testing.script import CallerUtterance

__all__ = [
    "BargeInResult",
    "CallReport",
    "Hangup",
    "ProgressSnapshot",
    "Turn",
    "Violation",
    "measure_barge_ins",
    "measure_turns",
    "render_progress",
]

Hangup = Literal["rest", "socket_closed", "caller", "transferred", "none"]

#: How close to a caller utterance's start the bot must have been talking for it to count
#: as still talking (the barge-in step decides one packet before the speech starts).
_JUST_STOPPED_S = 0.05


@dataclass(slots=True)
class Turn:
    """One caller utterance and the bot's answer. ``response_latency_ms`` is from the end of
    the caller's speech to the first bot audio the caller heard after it; None if the bot
    said nothing before the caller spoke again or the call ended."""

    caller_speech_end_s: float
    first_bot_audio_s: float | None
    response_latency_ms: float | None


@dataclass(slots=True)
class BargeInResult:
    """The caller talked over the bot at ``speech_start_s``; the bot's audio stopped in the
    playout at ``bot_silent_s`` (a clear arrived, or the bot's audio ceased). None if the
    bot talked on until the end of the call."""

    speech_start_s: float
    bot_silent_s: float | None
    latency_ms: float | None


@dataclass(slots=True)
class Violation:
    """A message the real provider would have rejected, and when it arrived."""

    t_s: float
    code: int | None
    reason: str


@dataclass(slots=True)
class CallReport:
    """Everything one simulated call measured. ``to_json``/``render_text`` present it."""

    provider: str
    url: str
    completed: bool = False
    end_reason: str = ""
    hangup: Hangup = "none"
    #: Where the bot transferred the call (the fake API accepted the transfer), else None.
    transferred_to: str | None = None
    close_code: int | None = None
    duration_s: float = 0.0
    call_id: str | None = None
    stream_id: str | None = None
    turns: list[Turn] = field(default_factory=list)
    barge_ins: list[BargeInResult] = field(default_factory=list)
    underruns: int = 0
    underrun_gap_ms: float = 0.0
    audio_sent_s: float = 0.0
    audio_received_s: float = 0.0
    audio_played_s: float = 0.0
    media_dropped: int = 0
    messages_reordered: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    marks_sent_by_server: int = 0
    marks_echoed: int = 0
    clears_received: int = 0
    dtmf_sent: int = 0
    dtmf_received: str = ""
    protocol_violations: list[Violation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    recording_path: str | None = None
    #: The bot's own breakdown of each turn (``phonewire call --console-token``), or None.
    bot_turns: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return _rounded(asdict(self))

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def render_text(self) -> str:
        return "\n".join(_text_lines(self))


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


# --- measurements -------------------------------------------------------------------------


def measure_turns(utterances: Sequence[CallerUtterance], bot_audible: Sequence[tuple[float, float]]) -> list[Turn]:
    """One ``Turn`` per caller utterance that had audible speech."""
    spoken = [u for u in utterances if u.speech_end_s > u.speech_start_s]
    turns = []
    for i, utterance in enumerate(spoken):
        end = utterance.speech_end_s
        horizon = spoken[i + 1].speech_start_s if i + 1 < len(spoken) else math.inf
        first = next((s for s, _ in bot_audible if end <= s < horizon), None)
        latency = None if first is None else (first - end) * 1000.0
        turns.append(Turn(end, first, latency))
    return turns


def measure_barge_ins(
    utterances: Sequence[CallerUtterance],
    bot_audible: Sequence[tuple[float, float]],
    clear_times: Sequence[float],
    call_end_s: float,
) -> list[BargeInResult]:
    """One ``BargeInResult`` per caller utterance that talked over the bot."""
    results = []
    for utterance in utterances:
        if utterance.barge_in and utterance.speech_end_s > utterance.speech_start_s:
            results.append(_barge_in(utterance.speech_start_s, bot_audible, clear_times, call_end_s))
    return results


def _barge_in(
    start: float, bot_audible: Sequence[tuple[float, float]], clear_times: Sequence[float], call_end_s: float
) -> BargeInResult:
    talking = [(s, e) for s, e in bot_audible if s <= start and e >= start - _JUST_STOPPED_S]
    if not talking:
        return BargeInResult(start, None, None)
    stopped = talking[-1][1]
    clear = next((t for t in clear_times if start <= t < stopped), None)
    if clear is not None:
        stopped = clear
    elif stopped >= call_end_s - 1e-6:
        return BargeInResult(start, None, None)
    return BargeInResult(start, stopped, max(0.0, stopped - start) * 1000.0)


# --- text rendering -----------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _text_lines(r: CallReport) -> list[str]:
    status = "completed" if r.completed else "NOT completed"
    lines = [
        f"phonewire call  {r.provider}  {r.url}",
        f"  result      {status}: {r.end_reason}",
        f"  duration    {r.duration_s:.2f} s   hang-up: {r.hangup}   close code: {r.close_code or '-'}",
        f"  audio       sent {r.audio_sent_s:.2f} s   received {r.audio_received_s:.2f} s"
        f"   played {r.audio_played_s:.2f} s",
        f"  underruns   {r.underruns} ({r.underrun_gap_ms:.0f} ms of gaps)",
        f"  marks       sent by bot {r.marks_sent_by_server}   echoed {r.marks_echoed}   clears {r.clears_received}",
        f"  dtmf        sent {r.dtmf_sent}   received {r.dtmf_received or '-'}",
        f"  network     media dropped {r.media_dropped}   reordered {r.messages_reordered}",
    ]
    lines += _table("turns", ("caller end", "bot audio", "latency"), _turn_rows(r.turns))
    lines += _table("barge-ins", ("speech", "bot silent", "latency"), _barge_rows(r.barge_ins))
    lines += _listing(
        "violations", [f"{v.t_s:.2f} s  {v.code or ''} {v.reason}".strip() for v in r.protocol_violations]
    )
    lines += _bot_turn_lines(r.bot_turns)
    lines += _listing("warnings", r.warnings)
    lines += _listing("errors", r.errors)
    if r.recording_path:
        lines.append(f"  recording   {r.recording_path}")
    return lines


def _bot_turn_lines(turns: list[dict[str, Any]] | None) -> list[str]:
    """The bot's side of each turn: ms since the caller stopped, stage by stage."""
    if turns is None:
        return []
    if not turns:
        return ["  bot turns   none"]
    lines: list[str] = []
    for turn in turns:
        stages = ", ".join(f"{name} {ms:.0f}" for name, ms in turn.get("stages", {}).items())
        title = "bot turns" if not lines else ""
        lines.append(f"  {title:<11} {turn.get('index', '?'):>2}  {stages} ms")
    return lines


def _turn_rows(turns: Sequence[Turn]) -> list[tuple[str, str, str]]:
    return [(_s(t.caller_speech_end_s), _s(t.first_bot_audio_s), _ms(t.response_latency_ms)) for t in turns]


def _barge_rows(barge_ins: Sequence[BargeInResult]) -> list[tuple[str, str, str]]:
    return [(_s(b.speech_start_s), _s(b.bot_silent_s), _ms(b.latency_ms)) for b in barge_ins]


def _table(title: str, header: tuple[str, str, str], rows: list[tuple[str, str, str]]) -> list[str]:
    if not rows:
        return [f"  {title:<11} none"]
    lines = [f"  {title:<11} {'#':>2}  {header[0]:>10}  {header[1]:>10}  {header[2]:>9}"]
    for i, row in enumerate(rows, 1):
        lines.append(f"  {'':<11} {i:>2}  {row[0]:>10}  {row[1]:>10}  {row[2]:>9}")
    return lines


def _listing(title: str, items: Sequence[str]) -> list[str]:
    if not items:
        return [f"  {title:<11} none"]
    return [f"  {title if i == 0 else '':<11} {item}" for i, item in enumerate(items)]


# --- live progress ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    """The call's state a few times a second, for a live display."""

    elapsed_s: float
    audio_sent_s: float
    audio_received_s: float
    bot_speaking: bool
    state: str


def render_progress(snapshot: ProgressSnapshot, width: int = 79) -> str:
    """A ``\\r``-led status line that overwrites itself on a terminal."""
    bot = "bot speaking" if snapshot.bot_speaking else "bot quiet   "
    line = (
        f"{snapshot.elapsed_s:6.1f} s | sent {snapshot.audio_sent_s:5.1f} s"
        f" | received {snapshot.audio_received_s:5.1f} s | {bot} | {snapshot.state}"
    )
    return "\r" + line[:width].ljust(width)
