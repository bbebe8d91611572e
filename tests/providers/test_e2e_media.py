"""Caller audio and keypad through a real server, the same contract for every provider: audio
round-trips with its content at each of the provider's formats, and DTMF reaches the bot in
order with what the provider says of it. (Twilio's: tests/transports/test_fastapi_roundtrip.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from phonewire.audio.analysis import tone
from phonewire.serializers.base import MediaFormat
from phonewire.testing.providers import ProviderClient
from support.bots import KeypadBot
from support.calls import assert_tone, dtmf_frames, wait_until
from support.echo_app import make_app
from support.server_harness import serve
from support.wire import WireClient, exotel, plivo, raw_pcm, telnyx, vonage


@dataclass(frozen=True)
class Format:
    provider: str
    client: Callable[..., ProviderClient]
    wire: MediaFormat
    freq: int
    #: How the simulated provider is told to speak this format (its start message).
    connect: dict[str, Any] = field(default_factory=dict)
    #: Telnyx configures the bidirectional codec separately (stream_bidirectional_codec).
    serializer_kwargs: dict[str, Any] = field(default_factory=dict)
    #: Exotel sends 100 ms media messages, so a longer tone.
    secs: float = 0.3
    #: Binary protocols: every outbound frame is exactly this many bytes.
    frame_bytes: int | None = None

    @property
    def id(self) -> str:
        return f"{self.provider}-{self.wire.encoding}-{self.wire.sample_rate}"


def _l16(rate: int) -> MediaFormat:
    return MediaFormat("l16", rate, 1)


FORMATS = [
    *(
        Format("exotel", exotel, _l16(rate), freq, {"sample_rate": rate}, secs=0.4)
        for rate, freq in ((8000, 1000), (16000, 5000), (24000, 9000))
    ),
    Format("plivo", plivo, MediaFormat("mulaw", 8000, 1), 1000, {"content_type": "audio/x-mulaw;rate=8000"}),
    Format("plivo", plivo, _l16(8000), 1000, {"content_type": "audio/x-l16;rate=8000"}),
    Format("plivo", plivo, _l16(16000), 5000, {"content_type": "audio/x-l16;rate=16000"}),
    *(
        Format(
            "telnyx",
            telnyx,
            MediaFormat(wire, rate, 1),
            freq,
            {"codec": codec, "sample_rate": rate},
            {"send_encoding": codec},
        )
        for codec, wire, rate, freq in (
            ("PCMU", "mulaw", 8000, 1000),
            ("PCMA", "alaw", 8000, 1000),
            ("L16", "l16", 8000, 1000),
            ("L16", "l16", 16000, 5000),
        )
    ),
    *(
        Format(name, client, _l16(rate), freq, {"sample_rate": rate}, frame_bytes=rate // 50 * 2)
        for name, client in (("vonage", vonage), ("raw_pcm", raw_pcm))
        for rate, freq in ((8000, 1000), (16000, 5000))
    ),
]


@pytest.mark.parametrize("f", FORMATS, ids=[f.id for f in FORMATS])
def test_audio_round_trips_with_its_content_at_each_of_the_providers_formats(f: Format) -> None:
    async def main() -> tuple[WireClient, Any]:
        app, calls = make_app(providers=[f.provider], serializer_kwargs=f.serializer_kwargs)
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, f.client(**f.connect))
            await client.handshake()
            sender = asyncio.create_task(client.stream_audio(tone(f.freq, f.secs, f.wire.sample_rate)))
            await client.pump(3.0, idle=0.3)
            await sender
            await client.close()
        return client, calls[0].transport.serializer

    client, serializer = asyncio.run(main())
    assert serializer.input_format == serializer.output_format == f.wire
    assert_tone(client.pcm(), f.wire.sample_rate, f.freq, f.secs)
    if f.frame_bytes is not None:
        assert {len(p) for p in client.payloads} == {f.frame_bytes}
    assert client.violations == []  # each provider's own outbound rules, checked per message


@pytest.mark.parametrize(
    ("provider", "client_type", "keys"),
    [
        ("exotel", exotel, "42*0"),
        ("vonage", vonage, "42*0"),
        ("raw_pcm", raw_pcm, "42*D"),
    ],
)
def test_dtmf_reaches_the_bot_in_order_with_the_duration_the_provider_reports(
    provider: str, client_type: Callable[[], ProviderClient], keys: str
) -> None:
    durations = (80, 260, 120, 90)

    async def main() -> list[Any]:
        app, calls = make_app(bot=lambda call: KeypadBot(b""), providers=[provider])
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, client_type())
            await client.handshake()
            for digit, duration in zip(keys, durations, strict=True):
                if provider == "raw_pcm":  # the simulator's raw-PCM client sends no duration
                    await client.send({"event": "dtmf", "digit": digit, "duration_ms": duration})
                else:
                    client.provider.dtmf_duration_ms = duration  # type: ignore[attr-defined]
                    await client.dtmf(digit)
            await wait_until(lambda: len(dtmf_frames(calls[0])) == 4, what="four digits")
            await client.close()
            await wait_until(lambda: calls[0].finished, what="the call to finish")
        return dtmf_frames(calls[0])

    frames = asyncio.run(main())
    assert [(f.button.value, f.duration_ms) for f in frames] == list(zip(keys, durations, strict=True))
