"""fixed_audio_packet_size and add_wav_header shape every outgoing audio payload."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import struct

from phonewire.audio.analysis import tone
from support.bots import KeypadBot
from support.echo_app import make_app
from support.server_harness import serve
from support.wire import WireClient


async def _payloads(params: dict[str, object], seconds: float) -> list[bytes]:
    app, _ = make_app(bot=lambda call: KeypadBot(tone(300, seconds, 24000)), params=params)
    async with serve(app) as hostport:
        client = await WireClient.connect(hostport, respond=False)
        await client.handshake()
        await client.dtmf("1")
        out: list[bytes] = []
        with contextlib.suppress(TimeoutError):  # 0.6 s without a message: the utterance is over
            while True:
                msg = await client.recv(timeout=0.6)
                if msg["event"] == "media":
                    out.append(base64.b64decode(msg["media"]["payload"]))
        await client.close()
    return out


def test_every_audio_payload_has_the_fixed_size_including_the_padded_tail() -> None:
    payloads = asyncio.run(_payloads({"fixed_audio_packet_size": 480}, 0.33))
    assert {len(p) for p in payloads} == {480}
    assert len(payloads) == 6  # 2640 μ-law bytes -> 5 full packets and a padded tail
    assert payloads[-1].endswith(b"\xff" * 200)  # μ-law silence pads the tail


def test_each_payload_carries_a_correct_wav_header_for_the_wire_encoding() -> None:
    payloads = asyncio.run(_payloads({"add_wav_header": True}, 0.2))
    assert payloads
    for p in payloads:
        assert p[:4] == b"RIFF" and p[8:16] == b"WAVEfmt "
        fmt_tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", p[20:36])
        assert (fmt_tag, channels, rate, bits) == (7, 1, 8000, 8)
        data_size = struct.unpack("<I", p[40:44])[0]
        assert p[36:40] == b"data" and data_size == len(p) - 44
