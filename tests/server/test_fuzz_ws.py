"""Hostile input against a real server, with a healthy call running beside it.

Runs ``PHONEWIRE_FUZZ_EXAMPLES`` hostile messages (300 in CI). A longer run:

    PHONEWIRE_FUZZ_EXAMPLES=20000 bash scripts/test.sh tests/server/test_fuzz_ws.py -s
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from phonewire.audio.analysis import dominant_frequency, tone
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.processors import EchoProcessor
from phonewire.server import ServerConfig, create_app
from support.server_harness import serve
from support.wire import STREAM_SID, WireClient

EXAMPLES = int(os.environ.get("PHONEWIRE_FUZZ_EXAMPLES", "300"))
PER_CONNECTION = 25

START = {
    "event": "start",
    "sequenceNumber": "1",
    "streamSid": STREAM_SID,
    "start": {
        "streamSid": STREAM_SID,
        "callSid": "CAfuzz",
        "accountSid": "ACfuzz",
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {},
    },
}
MEDIA = {"event": "media", "streamSid": STREAM_SID, "media": {"track": "inbound", "payload": "//8="}}


def hostile(rng: random.Random) -> str | bytes:
    """One hostile message, drawn from the cases providers and attackers actually produce."""
    valid = json.dumps(rng.choice([START, MEDIA, {"event": "dtmf", "dtmf": {"digit": "5"}}]))
    cases = [
        lambda: rng.randbytes(rng.randint(0, 400)),
        lambda: valid[: rng.randint(0, len(valid))],
        lambda: "x" * rng.choice([70_000, 200_000]),
        lambda: valid.encode(),
        lambda: json.dumps(START),
        lambda: json.dumps({**MEDIA, "streamSid": "MZ" + str(rng.random())}),
        lambda: json.dumps({**MEDIA, "media": {"payload": rng.choice([None, 5, "***", "", "=" * 9, [1]])}}),
        lambda: "[" * rng.randint(1, 50_000),
        lambda: bytes([0xFF, 0xFE]) + rng.randbytes(20),
        lambda: json.dumps({"event": rng.choice(["stop", "mark", "clear", "", None, 7]), "mark": {"name": None}}),
        lambda: json.dumps({"event": "dtmf", "dtmf": {"digit": rng.choice(["", "55", "Z", None, "\u0000"])}}),
        lambda: json.dumps(rng.random()),
    ]
    return rng.choice(cases)()


async def attack(hostport: str, rng: random.Random, count: int) -> int:
    """One connection sending ``count`` hostile messages (some after a valid start)."""
    sent = 0
    try:
        async with connect(
            f"ws://{hostport}/ws", compression=None, open_timeout=5, close_timeout=1, max_size=None
        ) as ws:
            if rng.random() < 0.6:
                await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
                await ws.send(json.dumps(START))
            for _ in range(count):
                await ws.send(hostile(rng))
                sent += 1
            if rng.random() < 0.3:  # a flood
                for _ in range(600):
                    await ws.send(json.dumps(MEDIA))
    except (ConnectionClosed, InvalidStatus, OSError, TimeoutError):
        return sent  # the server closed on us: the expected answer to most of this
    return sent


async def echo_bot(transport: Any, call: Any) -> None:
    task = PipelineTask(Pipeline([transport.input(), EchoProcessor(), transport.output()]))
    await PipelineRunner(handle_sigint=False).run(task)


def test_hostile_input_never_crashes_the_server_or_disturbs_a_healthy_call(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)

    async def main() -> tuple[int, Any, bytes]:
        app = create_app(echo_bot, ServerConfig(handshake_timeout=1.0, transport_params={"no_media_timeout_secs": 2}))
        async with serve(app) as hostport:
            healthy = await WireClient.connect(hostport, respond=False)
            await healthy.handshake()
            sender = asyncio.create_task(healthy.stream_audio(tone(440, 3.0, 8000)))
            receiver = asyncio.create_task(healthy.collect_media(6.0, until_silence=0.8))
            rng, tried = random.Random(1234), 0
            while tried < EXAMPLES:
                batch = [attack(hostport, random.Random(rng.random()), PER_CONNECTION) for _ in range(4)]
                tried += sum(await asyncio.gather(*batch))
            await sender
            packets = await receiver
            await healthy.close()
            return tried, app.state.metrics, b"".join(p for _, p in packets)

    tried, metrics, audio = asyncio.run(main())
    crashes = (
        metrics.bot_errors
        + metrics.internal_errors
        + caplog.text.count("raised unexpectedly")
        + caplog.text.count("Exception in ASGI")
    )
    print(f"\nfuzz: {tried} hostile messages, {crashes} crashes, healthy call echoed {len(audio) / 16000:.2f} s")
    assert tried >= EXAMPLES
    assert crashes == 0
    assert abs(len(audio) / 16000 - 3.0) < 0.06
    assert abs(dominant_frequency(audio, 8000) - 440) < 5
