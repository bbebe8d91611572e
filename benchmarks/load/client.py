"""Lean load generator: N simulated Twilio calls in real time against one echo server.

The call simulator (``phonewire.testing``) runs three tasks and the ``websockets`` client per
call: faithful, but ~50 µs per message, too heavy to drive hundreds of calls from one core.
This generator keeps the simulator's protocol side and drops its machinery:

* messages are the simulator's own: ``TwilioClient.opening_messages()``/``stop_message()``/
  ``mark_echo()``, and media messages built from a template that is checked against
  ``TwilioClient.media_message()`` (``check_media_template``, also in the CI smoke test);
  non-media server messages and the first media messages of every call are parsed by
  ``TwilioClient.parse_server_message`` (protocol violations are counted);
* one asyncio ``Protocol`` per call with a minimal RFC 6455 client (masked frames with a
  zero key, which is legal and makes masking free) on uvloop;
* 20 timer tasks, one per 1 ms phase slot: the calls' 20 ms packet clocks are spread evenly
  over the 20 ms period, as independent calls are, and each slot's clock is anchored
  (``t0 + k * 20 ms``), so a late tick is followed by catch-up, never by drift.

Workload per call: 20 ms μ-law packets both ways, continuously (a phone line sends silence
too), alternating 1.5 s of speech (the simulator's built-in "hello" recording) and 2 s of
silence, starting at a random point of the pattern. Every packet carries a tag (``tags.py``).

Measured, over a window after ramp-up and warm-up:

* echo latency per packet (sent -> echoed packet received), p50/p99 and its growth (median
  of the packets sent in the last 5 s minus the first 5 s);
* lost audio: packets sent in the window never echoed by the window's end + 1 s;
* underruns: a simulated handset plays the echoed audio; a packet arriving more than 10 ms
  after the audio before it ran out is an audible gap (the same tolerance as phonewire's
  pacer; re-anchored after a ``clear``);
* outbound pacing jitter: |inter-arrival time - 20 ms| between consecutive echoed packets
  of a call (RFC 3550's transit-time difference);
* both on the handset's clock: each arrival is moved back by how late the generator itself
  sent that packet (its timer lag), as a real provider sends on time;
* server CPU (user+system of the server process and its threads, psutil) per call, server
  RSS growth per call over the idle baseline (taken after one warm-up call), sampled each
  second; the server's own probe latencies (``/bench/stats``);
* the generator's own CPU and its timer lag, to show it was not the bottleneck.

Run by ``run_load.py``; standalone::

    python benchmarks/load/client.py --port 8765 --calls 10 --server-pid PID --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import os
import random
import sys
import time
import wave
from array import array
from pathlib import Path
from typing import Any

try:
    from . import tags
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import tags  # type: ignore[no-redef]

from phonewire.audio.g711 import pcm_to_ulaw
from phonewire.testing.providers.base import Clear, Mark, PlayAudio, ProtocolViolation
from phonewire.testing.providers.twilio import TwilioClient
from phonewire.testing.script import builtin_recording

__all__ = ["LoadConfig", "check_media_template", "run_load"]

PACKET_SECS = 0.02
PACKET_BYTES = 160  # 20 ms of 8 kHz μ-law
TALK_PACKETS = 75  # 1.5 s
SILENCE_PACKETS = 100  # 2.0 s
PATTERN_PACKETS = TALK_PACKETS + SILENCE_PACKETS
UNDERRUN_TOLERANCE = 0.010
LATE_SECS = 0.100
SLOTS = 20
_ZERO_MASK = b"\x00\x00\x00\x00"
_perf = time.perf_counter


# --- workload -------------------------------------------------------------------------------


def _pattern_rest_b64() -> list[str]:
    """Base64 of bytes 9..160 of each packet of the talk/silence pattern (the tag goes first)."""
    with wave.open(str(builtin_recording("hello"))) as w:
        if w.getframerate() != 8000 or w.getsampwidth() != 2:
            raise RuntimeError("the built-in recording must be 8 kHz PCM16")
        speech = pcm_to_ulaw(w.readframes(w.getnframes()))
    need = TALK_PACKETS * PACKET_BYTES
    speech = (speech * (need // len(speech) + 1))[:need]
    packets = [speech[i : i + PACKET_BYTES] for i in range(0, need, PACKET_BYTES)]
    packets += [b"\xff" * PACKET_BYTES] * SILENCE_PACKETS
    return [binascii.b2a_base64(p[tags.TAG_BYTES :], newline=False).decode("ascii") for p in packets]


def pattern_packet(k: int, offset: int) -> bytes:
    """The μ-law bytes of a call's packet ``k`` (for tests: what the echo must return)."""
    rest = base64.b64decode(_REST[(k + offset) % PATTERN_PACKETS])
    return tags.make_tag(k) + rest


_REST = _pattern_rest_b64()


def ws_frame(payload: bytes, opcode: int = 1) -> bytes:
    """One client frame, FIN set, masked with the all-zero key (so the payload is unchanged)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big")
    return head + _ZERO_MASK + payload


def media_text(tw: TwilioClient, k: int, offset: int) -> str:
    """Twilio's media message for packet ``k``; advances ``tw``'s counters like media_message."""
    tw._sequence += 1
    tw._chunk += 1
    ts = int(tw._media_ms)
    tw._media_ms += PACKET_SECS * 1000
    return (
        f'{{"event":"media","sequenceNumber":"{tw._sequence}","streamSid":"{tw.stream_sid}",'
        f'"media":{{"track":"inbound","chunk":"{tw._chunk}","timestamp":"{ts}","payload":"{tags.tag_b64(k)}'
        f'{_REST[(k + offset) % PATTERN_PACKETS]}"}}}}'
    )


def check_media_template(packets: int = 5) -> None:
    """Raise if the fast template differs from TwilioClient.media_message by a single byte."""
    fast, slow = TwilioClient(), TwilioClient()
    slow.account_sid, slow.call_sid, slow.stream_sid = fast.account_sid, fast.call_sid, fast.stream_sid
    slow.opening_messages(), fast.opening_messages()
    for k in range(packets):
        offset = 70  # crosses talk -> silence
        expected = slow.media_message(pattern_packet(k, offset))
        got = media_text(fast, k, offset)
        if got != expected:
            raise AssertionError(f"media template differs from TwilioClient:\n{got}\n{expected}")


# --- one call ---------------------------------------------------------------------------------


class Call(asyncio.Protocol):
    def __init__(self, gen: LoadGenerator, index: int) -> None:
        self.gen = gen
        self.index = index
        self.tw = TwilioClient(custom_parameters={"bench_call": index})
        self.offset = random.randrange(PATTERN_PACKETS)
        self.transport: asyncio.Transport | None = None
        self.upgraded = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.buf = b""
        self.handshake = b""
        self.sending = False
        self.close_code: int | None = None
        self.k = 0
        self.sent = array("d")  # when each packet was written
        self.late = array("f")  # how late that was against its slot's clock (the generator's own lag)
        self.seen = bytearray()
        self.lat = array("d")
        self.lat_at = array("f")
        self.inter = array("f")
        self.play_end = 0.0
        self.last_arrival = 0.0
        self.last_seq = -2
        self.underruns = 0
        self.gap_secs = 0.0
        self.dups = 0
        self.untagged = 0
        self.clears = 0
        self.marks = 0
        self.pending_marks: dict[str, asyncio.TimerHandle] = {}
        self.violations: list[str] = []
        self.validated = 0
        self.received = 0

    # -- connection --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        host = f"{self.gen.host}:{self.gen.port}"
        self.transport.write(
            (
                f"GET {self.gen.path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.sending = False
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError(f"closed before the upgrade ({exc})"))
        if not self.closed.done():
            self.closed.set_result(None)
        for handle in self.pending_marks.values():
            handle.cancel()

    def data_received(self, data: bytes) -> None:
        now = _perf()
        if not self.upgraded.done():
            self.handshake += data
            head, sep, rest = self.handshake.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.upgraded.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace")))
                self.transport.close()  # type: ignore[union-attr]
                return
            self.upgraded.set_result(None)
            data = rest
            if not data:
                return
        if self.buf:
            data = self.buf + data
        pos, n = 0, len(data)
        while n - pos >= 2:
            b0, b1 = data[pos], data[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, head = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, head = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
            end = pos + head + length
            if end > n:
                break
            self.on_frame(b0 & 0x0F, data[pos + head : end], now)
            pos = end
        self.buf = data[pos:] if pos < n else b""

    def send_text(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ws_frame(text.encode()))

    def open_stream(self) -> None:
        for message in self.tw.opening_messages():
            self.send_text(message)  # type: ignore[arg-type]
        self.sending = True

    def send_media(self, scheduled: float) -> None:
        k = self.k
        self.k = k + 1
        self.transport.write(ws_frame(media_text(self.tw, k, self.offset).encode()))  # type: ignore[union-attr]
        now = _perf()
        self.sent.append(now)
        self.late.append(now - scheduled)

    def hang_up(self) -> None:
        """Twilio's stop, then a close frame (1000)."""
        self.sending = False
        stop = self.tw.stop_message()
        if stop is not None:
            self.send_text(stop)  # type: ignore[arg-type]
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ws_frame((1000).to_bytes(2, "big"), opcode=8))

    # -- what the bot sends ----------------------------------------------------------------------

    def on_frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == 1:
            self.on_text(payload, now)
        elif opcode == 9:  # ping: pong with the same payload
            self.transport.write(ws_frame(payload, opcode=10))  # type: ignore[union-attr]
        elif opcode == 8:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(ws_frame(payload[:2], opcode=8))
                self.transport.close()
        elif opcode == 2:
            self.violations.append("binary frame (Twilio warning 31950)")

    def on_text(self, payload: bytes, now: float) -> None:
        i = payload.find(b'"payload"')
        if i < 0 or payload.find(b'"media"', 0, 24) < 0 or self.validated < 3:
            self._parse_slow(payload, now)
            return
        j = payload.find(b'"', i + 9)
        e = payload.find(b'"', j + 1)
        self.on_media(payload[j + 1 : e], now)

    def _parse_slow(self, payload: bytes, now: float) -> None:
        try:
            text = payload.decode()
        except UnicodeDecodeError:
            self.violations.append("text frame is not UTF-8")
            return
        for command in self.tw.parse_server_message(text):
            if isinstance(command, PlayAudio):
                self.validated += 1
                data = json.loads(text)["media"]["payload"].encode()
                self.on_media(data, now)
            elif isinstance(command, Mark):
                self.marks += 1
                delay = max(0.0, self.play_end - now)
                self.pending_marks[command.name] = asyncio.get_running_loop().call_later(
                    delay, self._echo_mark, command.name
                )
            elif isinstance(command, Clear):
                self.clears += 1
                self.play_end = 0.0  # the handset's buffer is emptied: next audio starts afresh
                for name, handle in list(self.pending_marks.items()):
                    handle.cancel()
                    self._echo_mark(name)
            elif isinstance(command, ProtocolViolation):
                self.violations.append(command.reason)

    def _echo_mark(self, name: str) -> None:
        self.pending_marks.pop(name, None)
        self.send_text(self.tw.mark_echo(name))  # type: ignore[arg-type]

    def on_media(self, b64: bytes, now: float) -> None:
        self.received += 1
        samples = len(b64) // 4 * 3 - b64.count(b"=", -2)
        seq = tags.seq_from_b64(b64)
        if seq < 0:  # not aligned to our packets: look for the tag anywhere
            raw = binascii.a2b_base64(b64)
            at = raw.find(tags.SYNC)
            seq = tags.seq_from_ulaw(raw[at:]) if at >= 0 else -1
            if seq < 0:
                self.untagged += 1
        gen = self.gen
        counting = gen.w0 <= now < gen.w1
        known = 0 <= seq < len(self.sent)
        # The handset's clock: as if the generator had sent on time (its own lag is not the bot's).
        t = now - self.late[seq] if known else now
        duration = samples / 8000
        if self.play_end == 0.0:
            self.play_end = t + duration
        elif t > self.play_end + UNDERRUN_TOLERANCE:
            if counting:
                self.underruns += 1
                self.gap_secs += t - self.play_end
            self.play_end = t + duration
        else:
            self.play_end = max(self.play_end, t) + duration
        if counting and seq == self.last_seq + 1:
            self.inter.append(t - self.last_arrival)
        self.last_arrival, self.last_seq = t, seq
        if known:
            seen = self.seen
            if seq >= len(seen):
                seen.extend(bytes(seq + 1000 - len(seen)))
            if seen[seq]:
                self.dups += 1
                return
            seen[seq] = 1
            sent_at = self.sent[seq]
            if gen.w0 <= sent_at < gen.w1:
                self.lat.append(now - sent_at)
                self.lat_at.append(sent_at - gen.w0)

    def lost_in_window(self) -> tuple[int, int]:
        """(packets sent in the window, of which never echoed)."""
        gen, seen = self.gen, self.seen
        sent = lost = 0
        for seq, t in enumerate(self.sent):
            if gen.w0 <= t < gen.w1:
                sent += 1
                if seq >= len(seen) or not seen[seq]:
                    lost += 1
        return sent, lost


# --- the generator ------------------------------------------------------------------------------


class LoadConfig:
    def __init__(self, **kw: Any) -> None:
        self.host: str = kw.get("host", "127.0.0.1")
        self.port: int = kw["port"]
        self.path: str = kw.get("path", "/ws")
        self.calls: int = kw["calls"]
        self.ramp: float = kw.get("ramp", max(1.0, kw["calls"] / 100))
        self.warmup: float = kw.get("warmup", 5.0)
        self.measure: float = kw.get("measure", 20.0)
        self.grace: float = kw.get("grace", 1.0)
        self.server_pid: int | None = kw.get("server_pid")
        self.warmup_call: bool = kw.get("warmup_call", True)
        self.seed: int = kw.get("seed", 1)


class LoadGenerator:
    def __init__(self, config: LoadConfig) -> None:
        self.config = config
        self.host, self.port, self.path = config.host, config.port, config.path
        self.w0 = self.w1 = float("inf")
        self.slots: list[list[Call]] = [[] for _ in range(SLOTS)]
        self.stopping = False
        self.lags = array("f")
        self.t_base = 0.0
        self.server_samples: list[dict[str, float]] = []

    async def connect(self, index: int) -> Call:
        loop = asyncio.get_running_loop()
        _, call = await loop.create_connection(lambda: Call(self, index), self.host, self.port)
        await asyncio.wait_for(call.upgraded, 10)
        call.open_stream()
        return call

    async def slot_loop(self, slot: int) -> None:
        calls = self.slots[slot]
        k = 0
        while not self.stopping:
            target = self.t_base + slot * PACKET_SECS / SLOTS + k * PACKET_SECS
            delay = target - _perf()
            if delay > 0:
                await asyncio.sleep(delay)
            now = _perf()
            if self.w0 <= now < self.w1:
                self.lags.append(now - target)
            for call in calls:
                if call.sending:
                    call.send_media(target)
            k += 1

    async def warm_up_call(self) -> None:
        """One short call before the baseline: lazy imports and first-call caches are not per call."""
        call = await self.connect(-1)
        self.slots[0].append(call)
        await asyncio.sleep(1.5)
        self.slots[0].remove(call)
        call.hang_up()
        await asyncio.wait_for(asyncio.shield(call.closed), 3)

    async def run(self) -> dict[str, Any]:
        cfg = self.config
        random.seed(cfg.seed)
        proc = _server_process(cfg.server_pid)
        self.t_base = _perf() + 0.05
        slot_tasks = [asyncio.create_task(self.slot_loop(s)) for s in range(SLOTS)]
        try:
            return await self._run(cfg, proc)
        finally:
            self.stopping = True
            for task in slot_tasks:
                task.cancel()
            await asyncio.gather(*slot_tasks, return_exceptions=True)

    async def _run(self, cfg: LoadConfig, proc: Any) -> dict[str, Any]:
        if cfg.warmup_call:
            await self.warm_up_call()
            await asyncio.sleep(1.0)
        rss_base = _rss(proc)
        calls, failures = await self._ramp(cfg)
        t_ready = _perf()
        self.w0 = t_ready + cfg.warmup
        self.w1 = self.w0 + cfg.measure
        await asyncio.sleep(max(0.0, self.w0 - _perf()))
        await self._server_stats(reset=True)
        me = _server_process(os.getpid())
        cpu0, me0, t0 = _cpu(proc), _cpu(me), _perf()
        rss_max = 0.0
        while _perf() < self.w1 - 1e-3:
            await asyncio.sleep(min(1.0, self.w1 - _perf()))
            rss = _rss(proc)
            rss_max = max(rss_max, rss or 0.0)
            self.server_samples.append({"t": _perf() - self.w0, "cpu": _cpu(proc) or 0.0, "rss": rss or 0.0})
        cpu1, me1, t1 = _cpu(proc), _cpu(me), _perf()
        rss_end = _rss(proc)
        # Echoes of the window's last packets arrive during the grace period; only then may the
        # server's summary (a sort and a full GC: tens of ms) stall it.
        await asyncio.sleep(cfg.grace)
        probe = await self._server_stats(reset=False)
        result = self._summarise(calls, failures, t1 - t0)
        result["server"] = _server_summary(cfg.calls, cpu0, cpu1, t1 - t0, rss_base, rss_end, rss_max, self)
        result["client"] = {
            "cpu_pct": None if me0 is None or me1 is None else 100 * (me1 - me0) / (t1 - t0),
            "timer_lag_ms": _pct(self.lags),
        }
        result["probe"] = probe
        result["ramp_secs"] = t_ready - self._ramp_started
        await self._hang_up(calls)
        return result

    async def _ramp(self, cfg: LoadConfig) -> tuple[list[Call], list[str]]:
        self._ramp_started = _perf()
        gap = cfg.ramp / max(1, cfg.calls)
        pending: list[asyncio.Task[Call]] = []
        for i in range(cfg.calls):
            pending.append(asyncio.create_task(self.connect(i)))
            await asyncio.sleep(max(0.0, self._ramp_started + (i + 1) * gap - _perf()))
        calls, failures = [], []
        for i, task in enumerate(await asyncio.gather(*pending, return_exceptions=True)):
            if isinstance(task, BaseException):
                failures.append(f"call {i}: {type(task).__name__}: {task}")
            else:
                calls.append(task)
                self.slots[(i * SLOTS) // max(1, cfg.calls)].append(task)
        return calls, failures

    async def _hang_up(self, calls: list[Call]) -> None:
        for call in calls:
            call.hang_up()
        waits = [asyncio.shield(c.closed) for c in calls]
        if waits:
            done, pending = await asyncio.wait(waits, timeout=5)
            for call in calls:
                if not call.closed.done() and call.transport is not None:
                    call.transport.abort()

    async def _server_stats(self, *, reset: bool) -> dict[str, Any] | None:
        try:
            return await _http_get_json(self.host, self.port, f"/bench/stats?reset={int(reset)}", timeout=10)
        except Exception as exc:  # an overloaded server may not answer in time
            return {"error": f"{type(exc).__name__}: {exc}"}

    def _summarise(self, calls: list[Call], failures: list[str], window: float) -> dict[str, Any]:
        lat = array("d")
        inter_dev = array("d")
        segments: dict[int, array[float]] = {}
        sent = lost = underruns = dups = untagged = clears = marks = received = 0
        gap = 0.0
        violations: dict[str, int] = {}
        for call in calls:
            lat.extend(call.lat)
            for value, at in zip(call.lat, call.lat_at, strict=True):
                segments.setdefault(int(at // 5), array("d")).append(value)
            inter_dev.extend(abs(x - PACKET_SECS) for x in call.inter)
            s, lo = call.lost_in_window()
            sent += s
            lost += lo
            underruns += call.underruns
            gap += call.gap_secs
            dups += call.dups
            untagged += call.untagged
            clears += call.clears
            marks += call.marks
            received += call.received
            for v in call.violations:
                violations[v] = violations.get(v, 0) + 1
        seg_keys = sorted(segments)
        seg = [{"from_s": 5 * k, **_pct(segments[k])} for k in seg_keys]
        growth = seg[-1]["p50"] - seg[0]["p50"] if len(seg) >= 2 and seg[0].get("count") else 0.0
        late = sum(1 for x in lat if x > LATE_SECS)
        call_minutes = len(calls) * window / 60
        return {
            "calls": self.config.calls,
            "connected": len(calls),
            "failures": failures[:10],
            "failed": len(failures),
            "window_secs": window,
            "echo_ms": _pct(lat),
            "echo_segments": seg,
            "echo_growth_ms": growth,
            "jitter_ms": _pct(inter_dev),
            "sent": sent,
            "lost": lost,
            "lost_pct": 100 * lost / sent if sent else 0.0,
            "late_pct": 100 * late / sent if sent else 0.0,
            "underruns": underruns,
            "underruns_per_call_minute": underruns / call_minutes if call_minutes else 0.0,
            "gap_ms": 1000 * gap,
            "duplicates": dups,
            "untagged": untagged,
            "clears": clears,
            "marks": marks,
            "received": received,
            "violations": violations,
            "close_codes": sorted({c.close_code for c in calls if c.close_code is not None}),
        }


# --- helpers ------------------------------------------------------------------------------------


def _pct(values: Any) -> dict[str, float]:
    data = sorted(values)
    n = len(data)
    if not n:
        return {"count": 0}

    def at(q: float) -> float:
        return 1000 * data[min(n - 1, int(q * n))]

    return {
        "count": n,
        "p50": at(0.5),
        "p90": at(0.9),
        "p99": at(0.99),
        "p999": at(0.999),
        "max": 1000 * data[-1],
        "mean": 1000 * sum(data) / n,
    }


def _server_process(pid: int | None) -> Any:
    if pid is None:
        return None
    try:
        import psutil

        return psutil.Process(pid)
    except Exception:
        return None


def _cpu(proc: Any) -> float | None:
    if proc is None:
        return None
    try:
        t = proc.cpu_times()
        return float(t.user + t.system)
    except Exception:
        return None


def _rss(proc: Any) -> float | None:
    if proc is None:
        return None
    try:
        return proc.memory_info().rss / 2**20
    except Exception:
        return None


def _server_summary(
    calls: int,
    cpu0: float | None,
    cpu1: float | None,
    secs: float,
    rss_base: float | None,
    rss_end: float | None,
    rss_max: float,
    gen: LoadGenerator,
) -> dict[str, Any]:
    out: dict[str, Any] = {"rss_base_mb": rss_base, "rss_end_mb": rss_end, "rss_max_mb": rss_max or None}
    if cpu0 is not None and cpu1 is not None and secs > 0:
        pct = 100 * (cpu1 - cpu0) / secs
        out["cpu_pct"] = pct
        out["cpu_pct_per_call"] = pct / max(1, calls)
        samples = gen.server_samples
        per_sec = [
            100 * (b["cpu"] - a["cpu"]) / (b["t"] - a["t"])
            for a, b in zip(samples, samples[1:], strict=False)
            if b["t"] > a["t"]
        ]
        out["cpu_pct_max_1s"] = max(per_sec) if per_sec else pct
    if rss_base is not None and rss_end is not None:
        out["rss_per_call_mb"] = (max(rss_end, rss_max or 0.0) - rss_base) / max(1, calls)
    return out


async def _http_get_json(host: str, port: int, path: str, timeout: float) -> Any:
    async def get() -> Any:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        data = await reader.read()
        writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
        return json.loads(body)

    return await asyncio.wait_for(get(), timeout)


def run_load(config: LoadConfig) -> dict[str, Any]:
    """Run one load level (blocking) and return its measurements."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - Windows
        runner = asyncio.run
    return runner(LoadGenerator(config).run())


def main() -> None:
    parser = argparse.ArgumentParser(description="N simulated Twilio calls against an echo server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--ramp", type=float, default=None)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--measure", type=float, default=20.0)
    parser.add_argument("--grace", type=float, default=1.0)
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--no-warmup-call", action="store_true")
    parser.add_argument("--cpu", type=int, default=None, help="pin the generator to one CPU")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=None, help="write the result here (default: stdout)")
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    kw: dict[str, Any] = dict(
        host=args.host,
        port=args.port,
        calls=args.calls,
        warmup=args.warmup,
        measure=args.measure,
        grace=args.grace,
        server_pid=args.server_pid,
        warmup_call=not args.no_warmup_call,
        seed=args.seed,
    )
    if args.ramp is not None:
        kw["ramp"] = args.ramp
    result = run_load(LoadConfig(**kw))
    text = json.dumps(result, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
