"""Where phonewire's time goes per packet: the transport in-process, without sockets.

N calls of the real ``FastAPIWebsocketTransport`` + ``EchoProcessor`` pipeline run on uvloop
against a fake WebSocket that hands over messages exactly as uvicorn does (an asyncio queue
per connection; ``receive()`` awaits it) and counts what is sent. A virtual clock advances
20 ms per tick, so the pacer behaves as in real time while the run goes as fast as the CPU
allows. The caller's side echoes marks like Twilio. What is left is phonewire's own cost per
packet (in + out), which the load benchmark cannot separate from uvicorn and the kernel.

    .venv/bin/python benchmarks/load/profile_transport.py                 # µs per packet
    .venv/bin/python benchmarks/load/profile_transport.py --profile       # + cProfile by stage
    .venv/bin/python benchmarks/load/profile_transport.py --vad silero

The harness's own cost (queue hand-over, building messages) is measured with a bare echo
coroutine in place of the pipeline and subtracted.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import heapq
import io
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import client as loadgen
from starlette.websockets import WebSocketState

from phonewire.testing.providers.twilio import TwilioClient

TICK = 0.02


class VirtualClock:
    """Monotonic seconds that move only when the driver says; ``sleep`` waits for them."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._n = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, secs: float) -> None:
        if secs <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._n += 1
        heapq.heappush(self._sleepers, (self.now + secs, self._n, fut))
        await fut

    def advance(self, secs: float) -> None:
        self.now += secs
        while self._sleepers and self._sleepers[0][0] <= self.now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)


class FakeWebSocket:
    """The part of starlette's WebSocket the transport uses, fed like uvicorn feeds it."""

    def __init__(self, tw: TwilioClient) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.tw = tw
        self.sent = 0
        self.media_sent = 0
        self.echo_marks: list[str] = []
        self.application_state = WebSocketState.CONNECTED
        self.client_state = WebSocketState.CONNECTED
        self.scope: dict[str, Any] = {}

    async def receive(self) -> dict[str, Any]:
        return await self.queue.get()

    async def send_text(self, text: str) -> None:
        self.sent += 1
        if text.startswith('{"event":"media"'):
            self.media_sent += 1
        elif '"mark"' in text[:20]:
            name = text.rsplit('"name":"', 1)[1].split('"', 1)[0]
            self.echo_marks.append(self.tw.mark_echo(name))  # type: ignore[arg-type]

    async def send_bytes(self, data: bytes) -> None:
        self.sent += 1

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.application_state = WebSocketState.DISCONNECTED


def _serializer(tw: TwilioClient) -> Any:
    from phonewire.serializers.twilio import TwilioFrameSerializer

    params = TwilioFrameSerializer.InputParams(auto_hang_up=False)
    return TwilioFrameSerializer(tw.stream_sid, tw.call_sid, params=params)


async def _phonewire_call(ws: FakeWebSocket, clock: VirtualClock, vad: str) -> None:
    from phonewire import FastAPIWebsocketParams, FastAPIWebsocketTransport, Pipeline, PipelineTask
    from phonewire.processors import EchoProcessor
    from phonewire.server.app import make_vad

    params = FastAPIWebsocketParams(
        audio_in_enabled=True,
        audio_out_enabled=True,
        serializer=_serializer(ws.tw),
        vad_analyzer=make_vad({"none": None, "silero-nobatch": "silero"}.get(vad, vad)),
        vad_batching=vad != "silero-nobatch",
    )
    transport = FastAPIWebsocketTransport(ws, params, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    task = PipelineTask(Pipeline([transport.input(), EchoProcessor(), transport.output()]))
    await task.run()


async def _bare_call(ws: FakeWebSocket, clock: VirtualClock, vad: str) -> None:
    """The harness alone: receive, find the payload, send a media message back."""
    prefix = '{"event":"media","streamSid":"' + ws.tw.stream_sid + '","media":{"payload":"'
    while True:
        message = await ws.receive()
        text = message.get("text") or ""
        i = text.find('"payload":"')
        if i >= 0:
            await ws.send_text(prefix + text[i + 11 : text.index('"', i + 11)] + '"}}')


async def run(calls: int, ticks: int, vad: str, bare: bool, profile: cProfile.Profile | None) -> dict[str, Any]:
    clock = VirtualClock()
    sockets = []
    tasks = []
    body = _bare_call if bare else _phonewire_call
    for i in range(calls):
        tw = TwilioClient()
        ws = FakeWebSocket(tw)
        for message in tw.opening_messages():
            ws.queue.put_nowait({"type": "websocket.receive", "text": message})
        sockets.append((ws, tw, i * 7 % loadgen.PATTERN_PACKETS))
        tasks.append(asyncio.create_task(body(ws, clock, vad)))
    for _ in range(20):
        await asyncio.sleep(0)

    async def tick(k: int) -> None:
        for ws, tw, offset in sockets:
            ws.queue.put_nowait({"type": "websocket.receive", "text": loadgen.media_text(tw, k, offset)})
            if ws.echo_marks:
                for mark in ws.echo_marks:
                    ws.queue.put_nowait({"type": "websocket.receive", "text": mark})
                ws.echo_marks.clear()
        for _ in range(12):  # receive -> pipeline -> output task -> pacer task -> timers
            await asyncio.sleep(0)
        clock.advance(TICK)
        await asyncio.sleep(0)

    warm = 50
    for k in range(warm):
        await tick(k)
    sent0 = sum(ws.media_sent for ws, _, _ in sockets)
    gc.collect()
    gc_time = [0.0, 0, 0.0]  # seconds, collections, start

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_time[2] = time.perf_counter()
        else:
            gc_time[0] += time.perf_counter() - gc_time[2]
            gc_time[1] += 1

    gc.callbacks.append(on_gc)
    if profile is not None:
        profile.enable()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for k in range(warm, warm + ticks):
        await tick(k)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    if profile is not None:
        profile.disable()
    gc.callbacks.remove(on_gc)
    echoed = sum(ws.media_sent for ws, _, _ in sockets) - sent0
    messages = sum(ws.sent for ws, _, _ in sockets)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    packets = calls * ticks
    return {
        "packets": packets,
        "echoed": echoed,
        "messages_out": messages,
        "us_per_packet": 1e6 * (cpu1 - cpu0) / packets,
        "wall_s": wall1 - wall0,
        "gc_us_per_packet": 1e6 * gc_time[0] / packets,
        "gc_collections": gc_time[1],
    }


def _stage_table(profile: cProfile.Profile, packets: int, top: int) -> str:
    stats = pstats.Stats(profile, stream=io.StringIO())
    rows = []
    for (file, line, func), (_cc, nc, tt, _ct, _callers) in sorted(
        stats.stats.items(),
        key=lambda kv: kv[1][2],
        reverse=True,  # type: ignore[attr-defined]
    )[:top]:
        where = f"{Path(file).parent.name}/{Path(file).name}:{line}" if file != "~" else "builtin"
        rows.append(f"{1e6 * tt / packets:8.2f} µs {nc / packets:6.2f}/pkt  {func}  ({where})")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=300, help="20 ms packets per call measured")
    parser.add_argument("--vad", default="none", choices=["none", "silero", "silero-nobatch", "energy"])
    parser.add_argument("--profile", action="store_true", help="cProfile: tottime per packet by function")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3, help="runs per setup; the fastest counts")
    args = parser.parse_args()
    import uvloop

    # Best of --repeat runs: noise (other processes, cache misses) only ever adds time.
    base = min(
        (uvloop.run(run(args.calls, args.ticks, args.vad, True, None)) for _ in range(args.repeat)),
        key=lambda r: r["us_per_packet"],
    )
    result = min(
        (uvloop.run(run(args.calls, args.ticks, args.vad, False, None)) for _ in range(args.repeat)),
        key=lambda r: r["us_per_packet"],
    )
    own = result["us_per_packet"] - base["us_per_packet"]
    print(
        f"{args.calls} calls x {args.ticks} packets, VAD {args.vad}: {result['us_per_packet']:.1f} µs/packet in+out "
        f"(harness alone {base['us_per_packet']:.1f}) -> phonewire's own {own:.1f} µs/packet = "
        f"{100 * own / 1e6 / 0.02:.3f}% of a core per call; echoed {result['echoed']}/{result['packets']}, "
        f"{result['messages_out']} messages out; cyclic GC {result['gc_us_per_packet']:.1f} µs/packet "
        f"({result['gc_collections']} collections)"
    )
    if args.profile:
        profile = cProfile.Profile()
        prof = uvloop.run(run(args.calls, args.ticks, args.vad, False, profile))
        print(_stage_table(profile, prof["packets"], args.top))


if __name__ == "__main__":
    main()
