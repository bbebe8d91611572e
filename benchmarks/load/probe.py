"""Server-side latency probes, the same for phonewire and for Pipecat (benchmark only).

Both servers run under the same uvicorn WebSocket implementation (websockets-sansio), so the
probes hook uvicorn, not either framework:

* **packet in**: uvicorn turns the bytes of a text frame into an ASGI message
  (``send_receive_event_to_app``, inside ``data_received``): the tag of a media message is
  read there and the time kept per connection, by sequence number;
* **frame in pipeline**: the echo bot calls :func:`on_echo` with the PCM of each
  ``InputAudioRawFrame`` it receives; ``now - packet in`` is the *inbound* transport latency
  (queueing in the event loop, JSON, base64, G.711, resampling, VAD, frame passing). The echo
  then pushes its output frame at once, so this is also the *frame out* time;
* **packet on the wire**: websockets' ``ServerProtocol.send_text`` is called right before
  uvicorn writes the frame to the socket; ``now - frame out`` is the *outbound* transport
  latency (queue hops, resampling, packetizing, pacing, JSON, base64, G.711).

Packets are matched by the tag the load generator put in the audio (``tags.py``), so a packet
dropped on the way (an interruption) never mismatches later ones. One packet in four is timed
(``tags.sampled_b64``); the others cost a ``find`` and one byte lookup. Timing every packet cost
~0.1 % of a core per call at 100 calls, too much next to a transport's ~0.5 %; sampled, it is
~0.03 % (see docs/benchmarks.md). ``--no-probe`` turns the probes off.
Standard library plus uvicorn and websockets only: it runs in both virtual environments.
"""

from __future__ import annotations

import time
from array import array
from typing import Any

try:
    from . import tags
except ImportError:  # run as a script from this directory
    import tags  # type: ignore[no-redef]

__all__ = ["PROBE", "Probe", "ensure_loop_watch", "install", "on_echo", "on_echo_b64", "percentiles", "watch_loop"]

_perf = time.perf_counter
_MAX_PENDING = 4096  # stamps kept per connection (a lost packet's stamp is dropped eventually)
_PAYLOAD_KEY = b'"payload"'


def percentiles(values: Any) -> dict[str, float]:
    """p50/p90/p99/p99.9/max/mean in milliseconds of a sequence of seconds."""
    data = sorted(values)
    n = len(data)
    if not n:
        return {"count": 0}

    def at(q: float) -> float:
        return 1000 * data[min(n - 1, int(q * n))]

    return {
        "count": n,
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "p999": at(0.999),
        "max": 1000 * data[-1],
        "mean": 1000 * sum(data) / n,
    }


class Probe:
    """Latency samples, plus the event loop's stalls and the garbage collector's pauses."""

    def __init__(self) -> None:
        self.enabled = True
        self.reset()

    def reset(self) -> None:
        self.inbound = array("d")
        self.outbound = array("d")
        self.unmatched_in = 0
        self.loop_lag = array("d")
        self.gc_pauses: list[tuple[int, float]] = []

    def summary(self) -> dict[str, Any]:
        import gc

        pauses = list(self.gc_pauses)
        gen2 = [d for g, d in pauses if g == 2]
        tracked = len(gc.get_objects())
        t0 = _perf()
        gc.collect()  # after the window: how long a full collection stalls this process now
        full_ms = 1000 * (_perf() - t0)
        return {
            "inbound_ms": percentiles(self.inbound),
            "outbound_ms": percentiles(self.outbound),
            "unmatched_in": self.unmatched_in,
            "loop_lag_ms": percentiles(self.loop_lag),
            "gc": {
                "collections": len(pauses),
                "total_ms": 1000 * sum(d for _, d in pauses),
                "max_ms": 1000 * max((d for _, d in pauses), default=0.0),
                "gen2": len(gen2),
                "gen2_max_ms": 1000 * max(gen2, default=0.0),
                "tracked_objects": tracked,
                "frozen_objects": gc.get_freeze_count(),
                "full_collection_ms": full_ms,
            },
        }


PROBE = Probe()


def _stamp_in(conn: Any, data: bytes) -> None:
    i = data.find(_PAYLOAD_KEY)
    if i < 0:
        return
    j = data.find(b'"', i + 9)
    head = data[j + 1 : j + 1 + tags.TAG_B64_CHARS]
    if not tags.sampled_b64(head):
        return
    seq = tags.seq_from_b64(head)
    if seq < 0:
        return
    stamps = conn.__dict__.get("_pw_in")
    if stamps is None:
        stamps = conn._pw_in = {}
        conn._pw_out = {}
    elif len(stamps) > _MAX_PENDING:
        stamps.clear()
    stamps[seq] = _perf()


def on_echo(conn: Any, pcm: bytes) -> None:
    """The echo bot got the frame of one caller packet and is pushing it back out now."""
    if conn is not None and tags.sampled_pcm(pcm):
        _on_echo(conn, lambda: tags.seq_from_pcm(pcm))


def on_echo_b64(conn: Any, payload: str) -> None:
    """:func:`on_echo` for a bot that never decodes the audio (the bare web-stack echo)."""
    if tags.sampled_b64(payload):
        _on_echo(conn, lambda: tags.seq_from_b64(payload))


def _on_echo(conn: Any, seq_of: Any) -> None:
    stamps = conn.__dict__.get("_pw_in")
    if not stamps:
        return
    seq = seq_of()
    t_in = stamps.pop(seq, None)
    now = _perf()
    if t_in is None:
        PROBE.unmatched_in += 1
        return
    PROBE.inbound.append(now - t_in)
    out = conn._pw_out
    if len(out) > _MAX_PENDING:
        out.clear()
    out[seq] = now


def _stamp_out(conn: Any, data: bytes) -> None:
    out = conn.__dict__.get("_pw_out")
    if not out:
        return
    i = data.find(_PAYLOAD_KEY)
    if i < 0:
        return
    j = data.find(b'"', i + 9)
    head = data[j + 1 : j + 1 + tags.TAG_B64_CHARS]
    if not tags.sampled_b64(head):
        return
    t_out = out.pop(tags.seq_from_b64(head), None)
    if t_out is not None:
        PROBE.outbound.append(_perf() - t_out)


def _watch_gc() -> None:
    import gc

    started = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = _perf()
        elif started[0]:
            PROBE.gc_pauses.append((info.get("generation", -1), _perf() - started[0]))

    gc.callbacks.append(callback)


async def watch_loop(period: float = 0.01) -> None:
    """Record how late a 10 ms timer fires: the event loop's stalls, as every call sees them."""
    import asyncio

    while True:
        target = _perf() + period
        await asyncio.sleep(period)
        PROBE.loop_lag.append(max(0.0, _perf() - target))


_watcher: list[Any] = []


def ensure_loop_watch() -> None:
    """Start :func:`watch_loop` once, from inside the running loop."""
    if not _watcher:
        import asyncio

        _watcher.append(asyncio.get_running_loop().create_task(watch_loop()))


def install(enabled: bool = True) -> None:
    """Patch uvicorn's websockets-sansio protocol and websockets' ServerProtocol (idempotent).

    Adds ``scope["pw.conn"]`` (the connection's ServerProtocol) to every WebSocket scope so
    the bot can pass it to :func:`on_echo`.
    """
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol as P
    from websockets.server import ServerProtocol

    PROBE.enabled = enabled
    if getattr(P, "_pw_probed", False):
        return
    P._pw_probed = True
    _watch_gc()
    handle_connect = P.handle_connect

    def patched_connect(self: Any, event: Any) -> None:
        handle_connect(self, event)
        scope = getattr(self, "scope", None)
        if scope is not None and enabled:
            scope["pw.conn"] = self.conn

    P.handle_connect = patched_connect
    if not enabled:
        return
    to_app = P.send_receive_event_to_app

    def patched_to_app(self: Any) -> None:
        frames = self.frames
        if len(frames) == 1 and self.curr_msg_data_type == "text":
            _stamp_in(self.conn, frames[0])
        to_app(self)

    P.send_receive_event_to_app = patched_to_app
    send_text = ServerProtocol.send_text

    def patched_send_text(self: Any, data: bytes, fin: bool = True) -> None:
        if "_pw_out" in self.__dict__:
            _stamp_out(self, data)
        send_text(self, data, fin)

    ServerProtocol.send_text = patched_send_text
