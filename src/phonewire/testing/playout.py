"""The handset's playout: what the caller hears of the bot, and when.

Twilio (like every provider here) queues the audio a bot sends and plays it at real time;
marks are queued between the audio and echoed when playback passes them; ``clear`` drops
what has not played yet. ``Playout`` models exactly that with a clock, so the simulator can
answer "when did the caller *hear* the bot?" rather than "when did bytes arrive?", which is
what latency, barge-in and underrun figures must be measured against.

Model: ``busy_until`` is when everything queued will have finished playing. Audio pushed
while the queue is busy extends it; audio pushed after it ran dry starts playing at once.
Marks carry the ``busy_until`` of the moment they arrived as their due time. The clock is
injectable, so tests can assert exact times.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from phonewire.audio.analysis import rms_dbfs

__all__ = ["AUDIBLE_DBFS", "PlayedSpan", "Playout", "audible_intervals"]

#: Level above which a 10-20 ms frame of bot audio counts as "the caller hears something".
#: Digital silence is -inf, mu-law idle noise and comfort noise sit well below -50 dBFS,
#: and speech or TTS output is -30 to -10 dBFS.
AUDIBLE_DBFS = -45.0


@dataclass(slots=True)
class PlayedSpan:
    """A run of bot audio played without a break. ``start_s`` is on the call's timeline
    (seconds since stream start); ``cleared`` means a clear cut it short."""

    start_s: float
    sample_rate: int
    pcm: bytearray = field(default_factory=bytearray, repr=False)
    cleared: bool = False

    @property
    def end_s(self) -> float:
        return self.start_s + len(self.pcm) / (2 * self.sample_rate)

    def cut_at(self, t_s: float) -> None:
        """Drop everything after ``t_s`` (a clear arrived)."""
        keep = max(0, round((t_s - self.start_s) * self.sample_rate))
        del self.pcm[2 * keep :]
        self.cleared = True


class Playout:
    """A FIFO of bot audio and marks drained against a real-time clock.

    Args:
        sample_rate: rate of the PCM pushed (the wire rate).
        clock: monotonic seconds; ``time.monotonic`` unless a test injects a fake.
        start: the clock reading of the call's time zero (defaults to ``clock()`` now).
        underrun_gap_s: audio arriving within this long after the queue ran dry (and no
            clear in between) is the same utterance continuing, so the gap was an underrun
            the caller heard as a drop-out.
        max_queued_s: a cap on queued-but-unplayed audio, so memory stays bounded whatever
            the bot sends; the excess is dropped and counted in ``dropped_s``.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        start: float | None = None,
        underrun_gap_s: float = 0.5,
        max_queued_s: float = 120.0,
    ) -> None:
        self.sample_rate = sample_rate
        self._clock = clock
        self._t0 = clock() if start is None else start
        self.underrun_gap_s = underrun_gap_s
        self.max_queued_s = max_queued_s
        self._busy_until = 0.0
        self._marks: deque[tuple[float, str]] = deque()
        self._after_clear = False
        self.spans: list[PlayedSpan] = []
        self.underruns = 0
        self.underrun_gap_ms = 0.0
        self.dropped_s = 0.0
        self.received_s = 0.0

    def now(self) -> float:
        """Seconds since the call's time zero."""
        return self._clock() - self._t0

    @property
    def queued_s(self) -> float:
        """Audio still waiting to be played."""
        return max(0.0, self._busy_until - self.now())

    @property
    def busy(self) -> bool:
        return self._busy_until > self.now()

    @property
    def next_mark_s(self) -> float | None:
        """When the next queued mark comes due (seconds on the call's timeline, like ``now``),
        or None when no mark is queued: a loop driving the playout waits until then to ``poll``."""
        return self._marks[0][0] if self._marks else None

    # --- input ------------------------------------------------------------------------------

    def push_audio(self, pcm: bytes) -> None:
        """Queue bot audio behind whatever is queued (or play it now if nothing is)."""
        now = self.now()
        pcm = self._fit(pcm, now)
        if not pcm:
            return
        self.received_s += len(pcm) / (2 * self.sample_rate)
        if self.spans and self._busy_until >= now and not self.spans[-1].cleared:
            self.spans[-1].pcm += pcm
        else:
            self._start_span(now, pcm)
        self._busy_until = self.spans[-1].end_s

    def _fit(self, pcm: bytes, now: float) -> bytes:
        room = self.max_queued_s - max(0.0, self._busy_until - now)
        keep = max(0, round(room * self.sample_rate)) * 2
        if len(pcm) > keep:
            self.dropped_s += (len(pcm) - keep) / (2 * self.sample_rate)
            return pcm[:keep]
        return pcm

    def _start_span(self, now: float, pcm: bytes) -> None:
        if self.spans and not self._after_clear:
            gap = now - self._busy_until
            if gap <= self.underrun_gap_s:
                self.underruns += 1
                self.underrun_gap_ms += gap * 1000.0
        self._after_clear = False
        self.spans.append(PlayedSpan(now, self.sample_rate, bytearray(pcm)))

    def push_mark(self, name: str) -> list[str]:
        """Queue a mark; returns the marks to echo now (this one too if nothing is queued)."""
        echoes = self.poll()
        if self._busy_until <= self.now():
            echoes.append(name)
        else:
            self._marks.append((self._busy_until, name))
        return echoes

    def clear(self) -> list[str]:
        """Drop unplayed audio; returns every pending mark, which Twilio echoes at once."""
        echoes = self.poll()
        now = self.now()
        if self._busy_until > now:
            self.spans[-1].cut_at(now)
            self._busy_until = now
        echoes.extend(name for _, name in self._marks)
        self._marks.clear()
        self._after_clear = True
        return echoes

    def poll(self) -> list[str]:
        """Advance to the clock's now; returns the marks whose audio has finished playing."""
        now = self.now()
        echoes = []
        while self._marks and self._marks[0][0] <= now:
            echoes.append(self._marks.popleft()[1])
        return echoes

    # --- what was heard -----------------------------------------------------------------------

    def played_s(self, until_s: float | None = None) -> float:
        """Seconds of bot audio played up to ``until_s`` (default: now)."""
        until = self.now() if until_s is None else until_s
        return sum(max(0.0, min(s.end_s, until) - s.start_s) for s in self.spans)

    def heard(self, start_s: float, end_s: float) -> bytes:
        """The bot audio the caller heard in ``[start_s, end_s)``, silence where none played."""
        rate = self.sample_rate
        out = bytearray(2 * max(0, round((end_s - start_s) * rate)))
        for span in reversed(self.spans):
            if span.end_s <= start_s:
                break
            _overlay(out, start_s, span, rate)
        return bytes(out)

    def level_dbfs(self, start_s: float, end_s: float) -> float:
        return rms_dbfs(self.heard(start_s, end_s))


def _overlay(out: bytearray, start_s: float, span: PlayedSpan, rate: int) -> None:
    """Copy the part of ``span`` that falls inside ``out`` (which starts at ``start_s``)."""
    offset = round((span.start_s - start_s) * rate)
    src_from = max(0, -offset)
    dst_from = max(0, offset)
    count = min(len(span.pcm) // 2 - src_from, len(out) // 2 - dst_from)
    if count > 0:
        out[2 * dst_from : 2 * (dst_from + count)] = span.pcm[2 * src_from : 2 * (src_from + count)]


def audible_intervals(
    spans: Sequence[PlayedSpan],
    *,
    until_s: float,
    frame_s: float = 0.01,
    threshold_dbfs: float = AUDIBLE_DBFS,
    merge_gap_s: float = 0.3,
) -> list[tuple[float, float]]:
    """When the caller could hear the bot: ``(start, end)`` runs of frames above
    ``threshold_dbfs``, with gaps shorter than ``merge_gap_s`` (pauses between words)
    merged, cut at ``until_s`` (the end of the call: later audio was never heard)."""
    runs: list[tuple[float, float]] = []
    for span in spans:
        rate = span.sample_rate
        step = max(1, round(frame_s * rate))
        for i in range(0, len(span.pcm) // 2, step):
            t = span.start_s + i / rate
            if t >= until_s:
                break
            if rms_dbfs(bytes(span.pcm[2 * i : 2 * (i + step)])) > threshold_dbfs:
                end = min(until_s, t + min(step, len(span.pcm) // 2 - i) / rate)
                _extend(runs, t, end, merge_gap_s)
    return runs


def _extend(runs: list[tuple[float, float]], start: float, end: float, merge_gap_s: float) -> None:
    if runs and start - runs[-1][1] <= merge_gap_s + 1e-9:
        runs[-1] = (runs[-1][0], max(runs[-1][1], end))
    else:
        runs.append((start, end))
