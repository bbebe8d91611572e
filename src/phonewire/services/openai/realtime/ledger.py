"""Which assistant item each millisecond of the bot's utterance belongs to, and where to cut.

Sans-I/O. Why it exists: barge-in must truncate the model's memory of its answer at exactly
what the caller heard, and the API counts per *item* while the phone counts per utterance. One
response is one utterance for the output transport (TTSStarted ... TTSStopped), but a response
can hold several output items (the ``item_id`` changes mid-stream), so the ledger keeps each
item's start within the utterance and the audio received for it, and turns the heard figure
into one ``(item_id, audio_end_ms)`` per item that was not heard to its end.

``truncate_point`` is the rule the API enforces: a whole number of ms, never negative, never
beyond the item's audio ("Audio content of 9250ms is already shorter than 57340ms").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from phonewire.services.openai.realtime.events import audio_ms

__all__ = ["ItemAudio", "ReplyLedger", "truncate_point"]


def truncate_point(heard_ms: float, item_ms: float) -> int:
    """Whole ms of an item heard: floor, clamped to ``[0, floor(item_ms)]``."""
    if not math.isfinite(heard_ms):
        heard_ms = 0.0
    return max(0, min(math.floor(heard_ms), math.floor(item_ms)))


@dataclass(slots=True)
class ItemAudio:
    item_id: str
    start_ms: float
    ms: float = 0.0
    transcript: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ReplyLedger:
    """One response's audio, item by item, in the order it was handed to the output."""

    response_id: str
    fmt: str
    items: list[ItemAudio] = field(default_factory=list)
    audio_started: bool = False
    done: bool = False
    cancelled: bool = False
    played_out: bool = False

    @property
    def total_ms(self) -> float:
        return sum(item.ms for item in self.items)

    def item(self, item_id: str) -> ItemAudio:
        if self.items and self.items[-1].item_id == item_id:
            return self.items[-1]
        for existing in self.items:
            if existing.item_id == item_id:
                return existing
        new = ItemAudio(item_id, self.total_ms)
        self.items.append(new)
        return new

    def add_audio(self, item_id: str, nbytes: int) -> None:
        self.item(item_id).ms += audio_ms(nbytes, self.fmt)

    def add_transcript(self, item_id: str, text: str) -> None:
        self.item(item_id).transcript.append(text)

    def transcript(self) -> str:
        return "".join("".join(i.transcript) for i in self.items)

    def truncations(self, heard_ms: float) -> list[tuple[str, int]]:
        """``(item_id, audio_end_ms)`` for each item the caller did not hear to its end."""
        cuts = []
        for item in self.items:
            point = truncate_point(heard_ms - item.start_ms, item.ms)
            if point < math.floor(item.ms):
                cuts.append((item.item_id, point))
        return cuts

    def heard_transcript(self, heard_ms: float) -> str:
        """The transcript cut where the audio was (pro rata per item: the API gives no word
        timing); what the context keeps of an interrupted reply."""
        parts = []
        for item in self.items:
            text = "".join(item.transcript)
            if item.ms <= 0:
                continue
            share = min(1.0, max(0.0, (heard_ms - item.start_ms) / item.ms))
            if share >= 1.0:
                parts.append(text)
                continue
            words = text.split()
            parts.append(" ".join(words[: int(len(words) * share)]))
            break
        return " ".join(p for p in parts if p).strip()
