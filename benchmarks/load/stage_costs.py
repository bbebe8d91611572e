"""What each step of the per-packet path costs, one at a time (µs, best of several runs).

    .venv/bin/python benchmarks/load/stage_costs.py      # ~20 s; pin it: taskset -c 0 ...

The steps a 20 ms Twilio packet takes through phonewire, in and out, plus the asyncio
machinery the transport uses per packet (timeouts, task hops, a task created and cancelled).
Complements ``profile_transport.py`` (the whole path in-process) and the load benchmark (the
whole path with uvicorn and sockets); docs/benchmarks.md puts the three together.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import client as loadgen

from phonewire.audio.g711 import pcm_to_ulaw, ulaw_to_pcm
from phonewire.audio.packetizer import Packetizer
from phonewire.audio.resample import RateConverter
from phonewire.frames import InputAudioRawFrame, OutputAudioRawFrame
from phonewire.serializers.twilio import TwilioFrameSerializer
from phonewire.testing.providers.twilio import TwilioClient


def best_us(fn: Callable[[], object], number: int = 20000, repeat: int = 5) -> float:
    return 1e6 * min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def sync_costs() -> list[tuple[str, float]]:
    tw = TwilioClient()
    tw.opening_messages()
    message = loadgen.media_text(tw, 7, 0)
    ser = TwilioFrameSerializer(tw.stream_sid, params=TwilioFrameSerializer.InputParams(auto_hang_up=False))
    payload_b64 = message.split('"payload":"')[1].split('"')[0]
    ulaw = binascii.a2b_base64(payload_b64)
    pcm = ulaw_to_pcm(ulaw)
    conv = RateConverter(8000)
    conv.convert(pcm, 8000)
    packetizer = Packetizer(320)
    return [
        ("json.loads of a media message (330 B)", best_us(lambda: json.loads(message))),
        ("base64 decode (216 chars)", best_us(lambda: binascii.a2b_base64(payload_b64))),
        ("G.711 μ-law decode (160 samples)", best_us(lambda: ulaw_to_pcm(ulaw))),
        ("InputAudioRawFrame(...)", best_us(lambda: InputAudioRawFrame(audio=pcm, sample_rate=8000))),
        ("TwilioFrameSerializer.deserialize (all of the above)", best_us(lambda: ser.deserialize(message))),
        ("RateConverter.convert 8 kHz -> 8 kHz (passthrough)", best_us(lambda: conv.convert(pcm, 8000))),
        ("OutputAudioRawFrame(...)", best_us(lambda: OutputAudioRawFrame(audio=pcm, sample_rate=8000))),
        ("Packetizer.push (one packet)", best_us(lambda: packetizer.push(pcm))),
        ("G.711 μ-law encode (160 samples)", best_us(lambda: pcm_to_ulaw(pcm))),
        ("base64 encode (160 B)", best_us(lambda: binascii.b2a_base64(ulaw, newline=False))),
        ("TwilioFrameSerializer.encode_audio (encode + base64 + message)", best_us(lambda: ser.encode_audio(pcm))),
    ]


async def _async_costs() -> list[tuple[str, float]]:
    n = 20000
    loop = asyncio.get_running_loop()

    async def timed(body: Callable[[], Any], rounds: int = 5) -> float:
        best = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            await body()
            best = min(best, time.perf_counter() - t0)
        return 1e6 * best / n

    async def timeouts() -> None:
        for _ in range(n):
            async with asyncio.timeout(30):  # noqa: ASYNC100 - its cost is what is measured
                pass

    lock = asyncio.Lock()

    async def locks() -> None:
        for _ in range(n):
            async with lock:
                pass

    async def sleeper() -> None:
        await asyncio.sleep(10)

    async def spawn_cancel_unstarted() -> None:
        for _ in range(n):
            loop.create_task(sleeper()).cancel()
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    async def spawn_cancel_started() -> None:
        tasks = []
        for _ in range(n):
            tasks.append(loop.create_task(sleeper()))
        await asyncio.sleep(0)  # every task starts and sleeps
        for t in tasks:
            t.cancel()
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    ping, pong = asyncio.Event(), asyncio.Event()

    async def echo_task() -> None:
        while True:
            await ping.wait()
            ping.clear()
            pong.set()

    async def hops() -> None:
        for _ in range(n):
            ping.set()
            await pong.wait()
            pong.clear()

    helper = loop.create_task(echo_task())
    await asyncio.sleep(0)
    import gc

    results = [
        ("asyncio.timeout() enter + exit", await timed(timeouts)),
        ("asyncio.Lock acquire + release, uncontended", await timed(locks)),
        ("task hop: wake another task with an Event and get an answer (2 wake-ups)", await timed(hops)),
        ("create_task + cancel before it starts", await timed(spawn_cancel_unstarted)),
    ]
    gc.collect()
    collections = [0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop":
            collections[0] += 1

    gc.callbacks.append(on_gc)
    results.append(("create_task + start + cancel (CancelledError thrown in)", await timed(spawn_cancel_started)))
    gc.callbacks.remove(on_gc)
    results.append((f"  (garbage collections triggered by those {5 * n} tasks: {collections[0]})", 0.0))
    helper.cancel()
    return results


def main() -> None:
    import uvloop

    rows = sync_costs() + uvloop.run(_async_costs())
    width = max(len(name) for name, _ in rows)
    for name, us in rows:
        print(f"{name:<{width}}  {us:6.2f} µs" if us else name)


if __name__ == "__main__":
    main()
