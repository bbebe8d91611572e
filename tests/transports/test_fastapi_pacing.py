"""Bot audio is paced like a phone plays it: real time plus a small lead, never a burst."""

from __future__ import annotations

import asyncio
import time

from phonewire.audio.analysis import dominant_frequency, tone
from phonewire.transports.params import DEFAULT_LEAD_SECS
from support.bots import KeypadBot
from support.echo_app import make_app
from support.server_harness import serve
from support.wire import WireClient


def test_two_seconds_of_bot_audio_take_two_seconds_and_never_run_ahead_of_the_lead() -> None:
    async def main() -> list[tuple[float, bytes]]:
        app, _ = make_app(bot=lambda call: KeypadBot(tone(300, 2.0, 24000)))
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, respond=False)
            await client.handshake()
            await client.dtmf("1")
            sent_at = time.monotonic()
            packets = await client.collect_media(5.0, until_silence=0.6)
            await client.close()
        return [(t - sent_at, p) for t, p in packets]

    packets = asyncio.run(main())
    audio = b"".join(p for _, p in packets)
    assert abs(len(audio) / 2 / 8000 - 2.0) < 0.03
    assert abs(dominant_frequency(audio, 8000) - 300) < 5
    first = packets[0][0]
    played = 0.0
    for arrival, pcm in packets:
        # packet k may leave at most `lead` before its media time (plus scheduling slack)
        assert arrival - first >= played - DEFAULT_LEAD_SECS - 0.015
        played += len(pcm) / 2 / 8000
    span = packets[-1][0] - first
    assert 2.0 - DEFAULT_LEAD_SECS - 0.1 < span < 2.0 + 0.15
