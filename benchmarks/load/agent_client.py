"""Conversational load generator: N simulated Twilio callers holding turns with an agent.

The echo generator's machinery (``client.py``: one asyncio ``Protocol`` per call with a minimal
RFC 6455 client, 20 phase-spread packet clocks anchored to ``t0 + k * 20 ms``, the simulator's own
Twilio messages, marks echoed when their audio has played, ``clear`` honoured), with a caller in
place of the echo pattern. Each call, in real time, 20 ms μ-law packets both ways:

1. listens to the greeting (bot audio until 0.5 s after its last packet has played);
2. pauses 0.4-1.0 s (seeded), then says the simulator's built-in "hello" recording (2.4 s),
   then line silence;
3. **response latency** = the end of its audible speech -> the first audible bot audio, both as
   the call simulator defines them (10 ms frames above -45 dBFS, ``phonewire.testing.playout``).
   The caller's end is on the handset's clock (the packet's slot time, not the generator's
   possibly late send); the bot was quiet, so its packet plays on arrival. A turn without an
   audible reply within 10 s is counted as missed;
4. listens to the reply to its end, and goes back to 2.

Measured over a window after ramp-up and warm-up: response latency (median, p95, max), missed
replies, **underruns** (a gap of 10 ms to 1 s between the bot's packets of one reply: audible
silence inside a reply; gaps between replies are turns), server CPU and RSS per call (psutil,
as ``client.py``), and the generator's own CPU and timer lag.

    python benchmarks/load/agent_client.py --port 8765 --calls 25 --server-pid PID --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import json
import os
import random
import statistics
import sys
import time
import wave
from pathlib import Path
from typing import Any

try:
    from . import client as echo
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import client as echo  # type: ignore[no-redef]

from phonewire.audio.analysis import rms_dbfs
from phonewire.audio.g711 import pcm_to_ulaw, ulaw_to_pcm
from phonewire.testing.playout import AUDIBLE_DBFS
from phonewire.testing.script import builtin_recording

__all__ = ["AgentLoadConfig", "run_agent_load"]

PACKET_SECS = echo.PACKET_SECS
PACKET_BYTES = echo.PACKET_BYTES
SILENCE_B64 = binascii.b2a_base64(b"\xff" * PACKET_BYTES, newline=False).decode()
REPLY_TIMEOUT = 10.0
REPLY_END_QUIET = 0.5  # silence after the bot's audio has played before the reply counts as over
MAX_INNER_GAP = 1.0  # a longer gap between bot packets is a new reply, not an underrun
_SILENT = frozenset(b"\xff\x7f\xfe\x7e\xfd\x7d")  # μ-law codes within ±4 of zero
_perf = time.perf_counter


def _audible_frames(pcm: bytes) -> list[bool]:
    """Per 10 ms frame of 8 kHz PCM16: above the simulator's audibility threshold (-45 dBFS)?"""
    step = 2 * 80
    return [rms_dbfs(pcm[i : i + step]) > AUDIBLE_DBFS for i in range(0, len(pcm), step)]


def _speech_packets() -> tuple[list[str], int, float]:
    """The "hello" recording as 20 ms μ-law packets (base64), the index after its last audible
    packet, and where in that packet the audible speech ends (s): the simulator's "caller stops"."""
    with wave.open(str(builtin_recording("hello"))) as w:
        pcm = w.readframes(w.getnframes())
    ulaw = pcm_to_ulaw(pcm)
    packets = [ulaw[i : i + PACKET_BYTES].ljust(PACKET_BYTES, b"\xff") for i in range(0, len(ulaw), PACKET_BYTES)]
    frames = _audible_frames(pcm)
    last = max(i for i, audible in enumerate(frames) if audible)  # the last audible 10 ms frame
    end_ms = (last + 1) * 10
    k = (end_ms - 1) // 20  # the packet holding the last audible frame
    return [binascii.b2a_base64(p, newline=False).decode() for p in packets], k + 1, end_ms / 1000 - k * PACKET_SECS


SPEECH_B64, VOICED_END, VOICED_END_IN_PACKET = _speech_packets()


def audible_offset(b64: bytes) -> float | None:
    """Where the first audible 10 ms of a bot packet starts (s into it), or None if none is."""
    try:
        raw = binascii.a2b_base64(b64)
    except binascii.Error:
        return None
    if all(b in _SILENT for b in raw):
        return None  # line silence: skip the decode
    for i, audible in enumerate(_audible_frames(ulaw_to_pcm(raw))):
        if audible:
            return i * 0.010
    return None


class Caller(echo.Call):
    """A call whose audio is a caller taking turns (see the module docstring)."""

    gen: AgentLoadGenerator

    def __init__(self, gen: AgentLoadGenerator, index: int) -> None:
        super().__init__(gen, index)
        self.rng = random.Random(gen.config.seed * 100_003 + index)
        self.state = "greeting"  # greeting | pause | speak | wait | reply
        self.state_at = _perf()
        self.speak_at = 0.0
        self.speech_k = 0
        self.speech_end = 0.0
        self.last_voiced = 0.0
        self.latencies: list[float] = []
        self.latency_at: list[float] = []
        self.missed = 0
        self.turns = 0
        self.bot_packets = 0

    # -- what the caller sends ---------------------------------------------------------------------

    def media(self, payload_b64: str) -> str:
        tw = self.tw
        tw._sequence += 1
        tw._chunk += 1
        ts = int(tw._media_ms)
        tw._media_ms += PACKET_SECS * 1000
        return (
            f'{{"event":"media","sequenceNumber":"{tw._sequence}","media":{{"track":"inbound",'
            f'"chunk":"{tw._chunk}","timestamp":"{ts}","payload":"{payload_b64}"}},"streamSid":"{tw.stream_sid}"}}'
        )

    def send_media(self, scheduled: float) -> None:
        self.tick(scheduled)
        if self.state == "speak":
            payload = SPEECH_B64[self.speech_k]
            self.speech_k += 1
            if self.speech_k == VOICED_END:
                self.speech_end = scheduled + VOICED_END_IN_PACKET  # where its audible speech ends
            if self.speech_k >= len(SPEECH_B64):
                self.set_state("wait", scheduled)
        else:
            payload = SILENCE_B64
        self.transport.write(echo.ws_frame(self.media(payload).encode()))  # type: ignore[union-attr]

    def set_state(self, state: str, now: float) -> None:
        self.state, self.state_at = state, now

    def tick(self, now: float) -> None:
        state = self.state
        if state in ("greeting", "reply"):
            quiet_since = max(self.play_end, self.last_voiced)
            started = self.last_voiced > 0.0 or state == "reply"
            if (started and now > quiet_since + REPLY_END_QUIET) or now - self.state_at > 3 * REPLY_TIMEOUT:
                self.speak_at = now + self.rng.uniform(0.4, 1.0)
                self.set_state("pause", now)
        elif state == "pause":
            if now >= self.speak_at:
                self.speech_k, self.speech_end = 0, 0.0
                self.set_state("speak", now)
        elif state == "wait" and now - max(self.speech_end, self.state_at) > REPLY_TIMEOUT:
            if self.gen.w0 <= self.speech_end < self.gen.w1:
                self.missed += 1
            self.speak_at = now + self.rng.uniform(0.4, 1.0)
            self.set_state("pause", now)

    # -- what the bot sends ------------------------------------------------------------------------

    def on_media(self, b64: bytes, now: float) -> None:
        self.received += 1
        self.bot_packets += 1
        samples = len(b64) // 4 * 3 - b64.count(b"=", -2)
        duration = samples / 8000
        gen = self.gen
        # the handset's buffer: an underrun is audio arriving after the audio before it ran out
        if self.play_end == 0.0 or now > self.play_end + MAX_INNER_GAP:
            self.play_end = now + duration  # a new utterance
        elif now > self.play_end + echo.UNDERRUN_TOLERANCE:
            if gen.w0 <= now < gen.w1:
                self.underruns += 1
                self.gap_secs += now - self.play_end
            self.play_end = now + duration
        else:
            self.play_end = max(self.play_end, now) + duration
        offset = audible_offset(b64)
        if offset is None:
            return
        self.last_voiced = now
        if self.state in ("speak", "wait") and self.speech_end:
            # it plays on arrival (the bot was quiet): heard at arrival + where in it the sound starts
            latency = now + offset - self.speech_end
            if gen.w0 <= self.speech_end < gen.w1:
                self.latencies.append(latency)
                self.latency_at.append(self.speech_end - gen.w0)
            self.turns += 1
            self.set_state("reply", now)
        elif self.state in ("pause", "speak"):
            pass  # the bot talking over the caller (a late reply): not a turn of ours


class AgentLoadConfig(echo.LoadConfig):
    pass


class AgentLoadGenerator(echo.LoadGenerator):
    async def connect(self, index: int) -> echo.Call:
        loop = asyncio.get_running_loop()
        _, call = await loop.create_connection(lambda: Caller(self, index), self.host, self.port)
        await asyncio.wait_for(call.upgraded, 10)
        call.open_stream()
        return call

    async def warm_up_call(self) -> None:
        """One call through a whole turn before the baseline (lazy imports, first connections)."""
        call = await self.connect(-1)
        assert isinstance(call, Caller)
        self.slots[0].append(call)
        deadline = _perf() + 15
        while call.turns < 1 and _perf() < deadline:  # noqa: ASYNC110 (a caller's turn is a counter)
            await asyncio.sleep(0.1)
        self.slots[0].remove(call)
        call.hang_up()
        await asyncio.wait_for(asyncio.shield(call.closed), 5)

    def _summarise(self, calls: list[echo.Call], failures: list[str], window: float) -> dict[str, Any]:
        callers = [c for c in calls if isinstance(c, Caller)]
        lat = [x for c in callers for x in c.latencies]
        early = [x for c in callers for x, at in zip(c.latencies, c.latency_at, strict=True) if at < window / 3]
        late = [x for c in callers for x, at in zip(c.latencies, c.latency_at, strict=True) if at >= 2 * window / 3]
        underruns = sum(c.underruns for c in callers)
        call_minutes = len(callers) * window / 60
        violations: dict[str, int] = {}
        for c in callers:
            for v in c.violations:
                violations[v] = violations.get(v, 0) + 1
        response = echo._pct(lat)
        if lat:
            ordered = sorted(lat)
            response["p95"] = 1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        growth = statistics.median(late) - statistics.median(early) if early and late else 0.0
        return {
            "calls": self.config.calls,
            "connected": len(callers),
            "failures": failures[:10],
            "failed": len(failures),
            "window_secs": window,
            "response_ms": response,
            "response_growth_ms": 1000 * growth,
            "turns": len(lat),
            "missed_replies": sum(c.missed for c in callers),
            "underruns": underruns,
            "underruns_per_call_minute": underruns / call_minutes if call_minutes else 0.0,
            "gap_ms": 1000 * sum(c.gap_secs for c in callers),
            "bot_packets": sum(c.bot_packets for c in callers),
            "clears": sum(c.clears for c in callers),
            "marks": sum(c.marks for c in callers),
            "violations": violations,
            "close_codes": sorted({c.close_code for c in callers if c.close_code is not None}),
        }


def run_agent_load(config: AgentLoadConfig) -> dict[str, Any]:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - Windows
        runner = asyncio.run  # type: ignore[assignment]
    return runner(AgentLoadGenerator(config).run())


def main() -> None:
    parser = argparse.ArgumentParser(description="N simulated Twilio callers taking turns with an agent.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--ramp", type=float, default=None)
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--measure", type=float, default=30.0)
    parser.add_argument("--grace", type=float, default=3.0)
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--no-warmup-call", action="store_true")
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    kw: dict[str, Any] = dict(
        host=args.host, port=args.port, calls=args.calls, warmup=args.warmup, measure=args.measure,
        grace=args.grace, server_pid=args.server_pid, warmup_call=not args.no_warmup_call, seed=args.seed,
        ramp=args.ramp if args.ramp is not None else max(1.0, args.calls / 25),
    )  # fmt: skip
    result = run_agent_load(AgentLoadConfig(**kw))
    text = json.dumps(result, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
