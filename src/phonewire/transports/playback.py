"""What the caller has actually heard of the bot.

The send clock only says what we *sent*; the provider's playback acknowledgements (Twilio
and Telnyx and Exotel marks, Plivo checkpoints, Vonage notifies) say what was *played*.
The tracker sends a mark at the end of every utterance and every ``mark_interval_ms`` of
audio inside it, and turns their echoes into:

* the moment the bot stopped speaking (the utterance's final mark echoed), and
* how many milliseconds of an interrupted utterance were heard: the position of the last
  echoed mark plus the time since its echo (playback runs in real time between marks),
  capped at what was sent - so the figure is exact to about one packet.

A ``clear`` makes Twilio and Telnyx echo every outstanding mark at once; those echoes are
ignored (the audio was dropped, not played). Providers without acknowledgements fall back
to the send clock, and every result says which source it used.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from phonewire.frames import PlaybackSource

__all__ = ["HeardReport", "PlaybackTracker", "Utterance"]


@dataclass(slots=True)
class Utterance:
    index: int
    sent_ms: float = 0.0
    first_sent_at: float | None = None
    acked_ms: float = 0.0
    acked_at: float | None = None
    text: list[tuple[float, str]] = field(default_factory=list)  # (position ms, text)
    final_mark: str | None = None
    finished: bool = False

    def heard_text(self, heard_ms: float) -> str | None:
        if not self.text:
            return None
        return "".join(t for pos, t in self.text if pos < heard_ms) or ""


@dataclass(frozen=True, slots=True)
class HeardReport:
    utterance: int
    heard_ms: float
    sent_ms: float
    heard_text: str | None
    source: PlaybackSource


class PlaybackTracker:
    def __init__(self, *, acks: bool, mark_interval_ms: float = 1000.0) -> None:
        self.acks = acks
        self.mark_interval_ms = mark_interval_ms
        self._ids = itertools.count(1)
        self._marks: dict[str, tuple[Utterance, float, bool]] = {}  # name -> (utt, position, final)
        self.current: Utterance | None = None
        self._since_mark_ms = 0.0
        self.latency_s = 0.0  # learned: provider playback start minus our first send
        self.marks_sent = 0
        self.marks_acked = 0
        #: (position ms in its utterance, echo time) of the last acknowledged mark.
        self.last_ack: tuple[float, float] | None = None

    # --- sending side ------------------------------------------------------------------

    def begin_if_needed(self) -> tuple[Utterance, bool]:
        """The utterance new audio belongs to, and whether it just began."""
        if self.current is None or self.current.finished:
            self.current = Utterance(index=next(self._ids))
            self._since_mark_ms = 0.0
            return self.current, True
        return self.current, False

    def add_text(self, text: str) -> None:
        utt, _ = self.begin_if_needed()
        utt.text.append((utt.sent_ms + self._queued_ahead_ms, text))

    def add_text_at(self, position_ms: float, text: str) -> None:
        """Text whose audio starts at ``position_ms`` of the current utterance (TTS timing)."""
        utt, _ = self.begin_if_needed()
        utt.text.append((position_ms, text))
        utt.text.sort(key=lambda item: item[0])

    _queued_ahead_ms = 0.0  # audio queued but not yet sent when text arrives (set by the output)

    def on_audio_sent(self, duration_ms: float, now: float) -> str | None:
        """Account for one sent packet; returns a periodic mark name to send after it, if due."""
        utt = self.current
        if utt is None or utt.finished:
            utt, _ = self.begin_if_needed()
        if utt.first_sent_at is None:
            utt.first_sent_at = now
        utt.sent_ms += duration_ms
        self._since_mark_ms += duration_ms
        if not self.acks or self._since_mark_ms < self.mark_interval_ms:
            return None
        self._since_mark_ms = 0.0
        return self._new_mark(utt, final=False)

    def end_utterance(self) -> str | None:
        """The utterance's audio is all sent; returns the final mark name (acks only)."""
        utt = self.current
        if utt is None or utt.finished or utt.final_mark is not None:
            return None
        if not self.acks:
            return None
        utt.final_mark = self._new_mark(utt, final=True)
        return utt.final_mark

    def _new_mark(self, utt: Utterance, *, final: bool) -> str:
        name = f"pw-{utt.index}-{next(self._ids)}"
        self._marks[name] = (utt, utt.sent_ms, final)
        self.marks_sent += 1
        return name

    # --- acknowledgements --------------------------------------------------------------

    def on_mark_acked(self, name: str, now: float) -> Utterance | None:
        """Record an echo; returns the utterance if its final mark came back (bot stopped)."""
        entry = self._marks.pop(name, None)
        if entry is None:
            return None  # not ours, or flushed by a clear
        utt, position, final = entry
        self.marks_acked += 1
        self.last_ack = (position, now)
        utt.acked_ms, utt.acked_at = position, now
        if utt.first_sent_at is not None and not final:
            self.latency_s = max(0.0, now - utt.first_sent_at - position / 1000)
        if final and not utt.finished:
            utt.finished = True
            return utt
        return None

    def heard(self, now: float) -> HeardReport | None:
        """How much of the current utterance the caller has heard by ``now``."""
        utt = self.current
        if utt is None or utt.first_sent_at is None:
            return None
        if self.acks and utt.acked_at is not None:
            heard = utt.acked_ms + (now - utt.acked_at) * 1000
            source = PlaybackSource.PROVIDER_ACK
        else:
            heard = (now - utt.first_sent_at - self.latency_s) * 1000
            source = PlaybackSource.SEND_CLOCK
        heard = max(0.0, min(heard, utt.sent_ms))
        return HeardReport(utt.index, heard, utt.sent_ms, utt.heard_text(heard), source)

    def interrupt(self, now: float) -> HeardReport | None:
        """The audio was cleared: report what was heard, forget outstanding marks."""
        report = self.heard(now)
        if self.current is not None:
            self.current.finished = True
        self._marks.clear()
        return report

    def finish_by_clock(self) -> Utterance | None:
        """No acknowledgement will come (or it is overdue): close the utterance by our clock."""
        utt = self.current
        if utt is None or utt.finished:
            return None
        utt.finished = True
        if utt.final_mark:
            self._marks.pop(utt.final_mark, None)
        return utt

    @property
    def outstanding_marks(self) -> int:
        return len(self._marks)
