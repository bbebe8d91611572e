"""A call's recording as it happens: caller left, bot right, on the caller's timeline.

Why this placement: a recording is only useful if it sounds like the call did. The caller's
packets are contiguous media (a provider streams 20 ms packets without gaps), so the caller
channel is their concatenation. The bot channel must show where the *caller heard* the bot,
not when we sent it: each sent packet starts playing at ``max(send time + playout latency,
end of what is already queued)`` - the provider's FIFO - where the latency is the one the
playback tracker learned from the provider's acks (``PlaybackTracker.latency_s``; 0 without
acks). A clear cuts the bot channel at the moment it reaches the provider.

Both channels meet on one origin: the caller's time zero, estimated as the earliest
``arrival - end position`` of any caller packet (a packet can arrive late, never early), so a
burst of packets queued while the call was being set up does not shift the timeline.

Memory is bounded: audio older than ``window_secs`` (by the clock) is mixed into ~1 s stereo
chunks and handed to the writer thread; nothing else is kept. Mixing a chunk is one numpy
operation per second per call; nothing here touches the disk.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from phonewire.recording.store import RecordingSink
from phonewire.recording.writer import RecordingWriter

__all__ = ["CallRecording"]

#: Audio this far behind "now" is final (late packets, a clear's cut) and can be written.
WINDOW_SECS = 2.0
CHUNK_SECS = 1.0


class CallRecording:
    def __init__(
        self, sample_rate: int, sink: RecordingSink, writer: RecordingWriter, *, window_secs: float = WINDOW_SECS
    ) -> None:
        self.rate = sample_rate
        self._sink = sink
        self._writer = writer
        self._window = int(window_secs * sample_rate)
        self._chunk = int(CHUNK_SECS * sample_rate)
        self.origin: float | None = None
        self._caller = bytearray()
        self._caller_start = 0  # sample index of _caller[0]
        self._caller_samples = 0
        self._spans: list[tuple[float, bytearray]] = []  # (start on the clock, pcm)
        self._bot_end = -math.inf
        self._flushed = 0
        self.dropped_chunks = 0
        self.notes: list[dict[str, Any]] = []
        self.closed = False

    # --- audio, from the transports -----------------------------------------------------------

    def caller(self, pcm: bytes, now: float) -> None:
        """The caller's next packet (PCM16 at ``rate``), received at ``now``."""
        start = self._caller_samples
        # A packet leaves the provider once its last sample was captured: it cannot arrive
        # before origin + its end, so every packet bounds the origin from above.
        estimate = now - (start + len(pcm) // 2) / self.rate
        if self.origin is None or estimate < self.origin:
            self.origin = estimate
        self._caller_samples += len(pcm) // 2
        if start >= self._flushed:
            self._caller += pcm
        elif self._caller_samples > self._flushed:  # partly late: keep the part still open
            self._caller += pcm[2 * (self._flushed - start) :]
        self._maybe_flush(now)

    def bot(self, pcm: bytes, now: float, latency: float) -> None:
        """A bot packet (PCM16 at ``rate``) sent at ``now``; it plays after what is queued."""
        start = max(now + latency, self._bot_end)
        if self._spans and abs(start - self._bot_end) < 1e-6:
            self._spans[-1][1].extend(pcm)
        else:
            self._spans.append((start, bytearray(pcm)))
        self._bot_end = start + len(pcm) / (2 * self.rate)
        self._maybe_flush(now)

    def cut(self, now: float, latency: float) -> None:
        """A clear: nothing the provider still had queued is heard."""
        at = now + latency
        kept: list[tuple[float, bytearray]] = []
        for start, pcm in self._spans:
            if start >= at:
                continue
            keep = round((at - start) * self.rate)
            del pcm[2 * keep :]
            kept.append((start, pcm))
        self._spans = kept
        self._bot_end = min(self._bot_end, at)

    def gap(self, now: float) -> None:
        """A reconnect: the caller's audio while no socket carried the call is silence, so what
        follows stays on the call's timeline."""
        if self.origin is None:
            return
        missing = int((now - self.origin) * self.rate) - self._caller_samples
        if missing > 0:
            self.caller(bytes(2 * missing), now)

    def note(self, role: str, text: str, now: float) -> None:
        """A transcript line (``role``: "caller" or "bot") for the sidecar, at its call time."""
        if len(self.notes) < 2000:
            at = None if self.origin is None else round(now - self.origin, 3)
            self.notes.append({"role": role, "text": text[:2000], "at_secs": at})

    # --- chunks ----------------------------------------------------------------------------

    def _maybe_flush(self, now: float) -> None:
        if self.origin is None:
            return
        position = int((now - self.origin) * self.rate)
        if position - self._window - self._flushed >= self._chunk:
            self._flush(position - self._window)

    def _flush(self, upto: int) -> None:
        frames = upto - self._flushed
        if frames <= 0 or self.origin is None:
            return
        left = np.zeros(frames, dtype="<i2")
        caller = np.frombuffer(bytes(self._caller[: 2 * (upto - self._caller_start)]), dtype="<i2")
        offset = self._flushed - self._caller_start
        part = caller[offset:]
        left[: part.size] = part[:frames]
        right = np.zeros(frames, dtype="<i2")
        kept = []
        for start, pcm in self._spans:
            first = round((start - self.origin) * self.rate)
            samples = np.frombuffer(bytes(pcm), dtype="<i2")
            lo, hi = max(first, self._flushed), min(first + samples.size, upto)
            if hi > lo:
                right[lo - self._flushed : hi - self._flushed] = samples[lo - first : hi - first]
            if first + samples.size > upto:
                kept.append((start, pcm))
        self._spans = kept
        drop = max(0, upto - self._caller_start)
        del self._caller[: 2 * drop]
        self._caller_start += drop
        self._flushed = upto
        stereo = np.column_stack((left, right)).astype("<i2").tobytes()
        if not self._writer.put(self._sink.write, stereo):
            self.dropped_chunks += 1

    def finish(self, sidecar: dict[str, Any]) -> None:
        """Write what is left and close the recording (on the writer thread)."""
        if self.closed:
            return
        self.closed = True
        if self.origin is not None:
            bot_end = 0 if math.isinf(self._bot_end) else round((self._bot_end - self.origin) * self.rate)
            end = max(self._caller_samples, bot_end)
            while self._flushed < end:  # in chunks, so no single array is the whole tail
                self._flush(min(end, self._flushed + 10 * self._chunk))
        sidecar = {**sidecar, "notes": self.notes}
        sidecar["recording"] = {**sidecar.get("recording", {}), "dropped_chunks": self.dropped_chunks}
        self._writer.put(self._sink.close, sidecar, must=True)


def pcm_for_recording(
    data: bytes, encoding: str, rate: int, target: int, convert: Callable[[bytes, int], bytes] | None
) -> bytes:
    """Wire audio as PCM16 at the recording's rate (G.711 decoded, other rates converted)."""
    if encoding in ("mulaw", "alaw"):
        from phonewire.audio.g711 import alaw_to_pcm, ulaw_to_pcm

        data = ulaw_to_pcm(data) if encoding == "mulaw" else alaw_to_pcm(data)
    if rate != target and convert is not None:
        data = convert(data, rate)
    return data
