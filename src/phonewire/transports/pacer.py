"""Real-time pacing of outbound audio by media time.

A WebSocket has no sound card behind it to block on, so the sender must play the
provider's clock itself. Each packet's send time is computed from an anchor, never
accumulated from sleeps::

    deadline = t0 + samples_sent / sample_rate - lead

``lead`` keeps that much audio buffered at the provider so a late TTS chunk or an event
loop hiccup does not become an audible gap. A sender that falls behind (a stall) sends at
once until it is back at its lead - it catches up instead of carrying the delay forever,
which is how Pipecat's latency grows under load. Only when the provider's buffer has
really run dry (the peer has played everything we sent) is the schedule re-anchored.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Pacer"]

#: A packet this late is "just in time", not a gap: real handsets and provider jitter
#: buffers absorb a few ms, and an echo of real-time audio always arrives exactly on time.
UNDERRUN_TOLERANCE_SECS = 0.01


class Pacer:
    def __init__(self, sample_rate: int, lead_secs: float, clock: Callable[[], float] = time.monotonic) -> None:
        if sample_rate <= 0 or lead_secs < 0:
            raise ValueError("sample_rate must be positive and lead_secs >= 0")
        self.sample_rate = sample_rate
        self.lead = lead_secs
        self.clock = clock
        self._t0: float | None = None
        self._sent = 0
        self._between_utterances = True
        self.underruns = 0

    def delay_before_send(self) -> float:
        """Seconds to wait before the next packet may go out (0 when it may go now)."""
        now = self.clock()
        t0 = self._t0
        playout_end = 0.0 if t0 is None else t0 + self._sent / self.sample_rate  # buffered_secs, inline
        if t0 is None or playout_end - now < -UNDERRUN_TOLERANCE_SECS:
            if t0 is not None and self._sent and not self._between_utterances:
                self.underruns += 1  # ran dry in the middle of an utterance: the caller heard a gap
            self._t0, self._sent = now, 0
            self._between_utterances = False
            return 0.0
        return max(0.0, playout_end - self.lead - now)

    def on_sent(self, samples: int) -> None:
        self._sent += samples
        self._between_utterances = False

    def end_of_utterance(self) -> None:
        """The next time the peer runs dry is a pause, not an underrun."""
        self._between_utterances = True

    def buffered_secs(self, now: float | None = None) -> float:
        """Audio sent but not yet played by the peer, by our clock (negative: it ran dry)."""
        if self._t0 is None:
            return 0.0
        now = self.clock() if now is None else now
        return self._t0 + self._sent / self.sample_rate - now

    def playout_end(self) -> float | None:
        """When the peer will have played everything sent so far, by our clock."""
        return None if self._t0 is None else self._t0 + self._sent / self.sample_rate

    def reset(self) -> None:
        """Forget the schedule (after an interruption: the provider dropped its buffer)."""
        self._t0, self._sent = None, 0
        self._between_utterances = True
