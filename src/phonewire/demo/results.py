"""What the demo bot tells the demo runner about its call: transcripts, replies, latency.

The bot runs in the ``phonewire serve`` child process and the report is printed by the runner,
so at call end the bot writes one JSON file per call into ``PHONEWIRE_DEMO_RESULTS_DIR``
(written to a temporary name, then renamed, so the runner never reads half a file). The runner
waits for it, bounded, and renders it under the simulator's report. A file rather than an HTTP
endpoint: nothing stays in the server's memory, and the runner needs no second client.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from phonewire.transports.turn_latency import STAGES

__all__ = ["RESULTS_DIR_ENV", "CallResults", "ConversationTurn", "read_results", "render_results", "write_results"]

RESULTS_DIR_ENV = "PHONEWIRE_DEMO_RESULTS_DIR"
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(slots=True)
class ConversationTurn:
    """One caller turn: what Whisper heard, what the caller heard of the reply, and the
    reply's latency stages (seconds from the caller's stop; ``transports.turn_latency``)."""

    caller: str
    bot: str
    interrupted: bool = False
    stages: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class CallResults:
    call_id: str
    brain: str
    stt: str
    tts: str
    turn_taking: str = ""
    greeting: str = ""
    turns: list[ConversationTurn] = field(default_factory=list)
    ended_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def conversation_turns(messages: Sequence[Any], records: Sequence[Any], suffix: str = " —") -> tuple[str, list[Any]]:
    """(greeting, turns) from the context's messages and the transport's ``TurnRecord``s.

    Each user message is a caller turn and the assistant message after it the reply as heard
    (an interrupted one ends with the aggregator's ``suffix``). Turn records are matched in
    order: the transport opens one per VAD stop, the aggregator one user message per turn."""
    greeting, turns = "", []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            continue
        role, text = message.get("role"), message["content"]
        if role == "user":
            turns.append(ConversationTurn(caller=text, bot=""))
        elif role == "assistant" and turns and not turns[-1].bot:
            cut = text.endswith(suffix)
            turns[-1].bot, turns[-1].interrupted = (text[: -len(suffix)] if cut else text), cut
        elif role == "assistant" and not turns:
            greeting = text
    for turn, record in zip(turns, records, strict=False):
        turn.stages = {k: round(v, 4) for k, v in dict(record.stages).items()}
    return greeting, turns


def results_path(directory: str | os.PathLike[str], call_id: str) -> Path:
    return Path(directory) / f"{_SAFE_ID.sub('_', call_id)}.json"


async def write_results(directory: str | os.PathLike[str], results: CallResults) -> Path:
    path = results_path(directory, results.call_id)
    await asyncio.to_thread(_write_atomically, path, json.dumps(results.to_dict(), indent=2))
    return path


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


async def read_results(directory: str | os.PathLike[str], call_id: str, timeout_secs: float) -> dict[str, Any] | None:
    """The bot's results for ``call_id``, waiting up to ``timeout_secs`` for them to appear
    (the bot writes them after its pipeline ends, which can be just after the call closed)."""
    path = results_path(directory, call_id)
    deadline = time.monotonic() + timeout_secs
    while not path.exists():
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(0.05)
    data: dict[str, Any] = json.loads(await asyncio.to_thread(path.read_text, encoding="utf-8"))
    return data


def _stage_line(stages: dict[str, float]) -> str:
    parts = [f"{name} {1000 * stages[name]:.0f}" for name in STAGES if name in stages]
    return (", ".join(parts) + " ms") if parts else "-"


def render_results(data: dict[str, Any]) -> str:
    """The conversation and its latency breakdown, as lines under the call report."""
    lines = [
        "phonewire demo conversation",
        f"  brain       {data.get('brain', '?')}",
        f"  speech      {data.get('stt', '?')}  /  {data.get('tts', '?')}",
        f"  turns end   {data.get('turn_taking') or '?'}",
    ]
    if data.get("greeting"):
        lines.append(f"  greeting    bot: {data['greeting']}")
    for i, turn in enumerate(data.get("turns", []), 1):
        cut = "  [interrupted by the caller]" if turn.get("interrupted") else ""
        lines.append(f"  turn {i:<6} caller: {turn.get('caller', '')}")
        lines.append(f"  {'':<11} bot:    {turn.get('bot', '') or '(nothing heard)'}{cut}")
        lines.append(f"  {'':<11} stages: {_stage_line(turn.get('stages', {}))}")
    lines.append(f"  ended by    {data.get('ended_by') or 'the caller'}")
    return "\n".join(lines)
