"""Telnyx end to end through a real server: the call, DTMF redelivery, hang-up, and media that
arrives out of order (codecs: test_e2e_media.py; marks and clear: test_e2e_playback.py)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from phonewire.audio.analysis import dominant_frequency, tone
from phonewire.serializers.base import MediaFormat
from phonewire.serializers.telnyx import TelnyxFrameSerializer
from support.calls import dtmf_frames
from support.echo_app import make_app
from support.provider_calls import assert_clean_call, echo_call, keypad_call, rest_goodbye_call
from support.server_harness import serve
from support.wire import (
    TELNYX_CALL_CONTROL_ID,
    TELNYX_FROM,
    TELNYX_STREAM_ID,
    TELNYX_TO,
    TELNYX_USER_ID,
    WireClient,
    telnyx,
)

TELNYX = ["telnyx"]


def test_a_telnyx_call_runs_from_connected_and_start_to_stop() -> None:
    client = telnyx({"customer_id": "cust_1001", "language": "en-US"})
    call, wire = asyncio.run(echo_call("telnyx", client, pcm=tone(440, 0.2, 8000)))
    assert call.transport is not None
    info = call.transport.call_info
    assert (info.provider, info.call_id, info.stream_id) == ("telnyx", TELNYX_CALL_CONTROL_ID, TELNYX_STREAM_ID)
    assert (info.account_id, info.from_number, info.to_number) == (TELNYX_USER_ID, TELNYX_FROM, TELNYX_TO)
    assert info.custom_parameters == {"customer_id": "cust_1001", "language": "en-US"}
    assert info.media_format == MediaFormat("mulaw", 8000, 1)
    stats = call.transport.stats
    assert stats.close_reason == "stop"
    assert stats.hangup == "skipped: call already ended"  # Telnyx said stop: never hang up a gone call
    assert_clean_call(call, wire, audio_in_ms=200)


def test_dtmf_from_telnyx_reaches_the_bot_in_order_and_a_redelivered_digit_once() -> None:
    presses: list[Any] = []

    async def press(wire: WireClient) -> None:
        presses.extend(wire.provider.dtmf_message(digit) for digit in "4270")
        for message in presses:
            await wire.send(message)
        await wire.send(presses[3])  # the same press, delivered twice
        await wire.dtmf("9")

    call, _ = asyncio.run(keypad_call("telnyx", telnyx(), press, digits=5))
    assert call.transport is not None
    frames = dtmf_frames(call)
    assert [f.button.value for f in frames] == ["4", "2", "7", "0", "9"]
    assert frames[3].metadata == {"occurred_at": json.loads(presses[3])["occurred_at"]}
    assert call.transport.serializer.duplicate_dtmf == 1
    assert call.transport.stats.dtmf_in == 5


def test_hang_up_posts_to_the_telnyx_call_control_api_with_the_bearer_key() -> None:
    def kwargs(base_url: str) -> dict[str, Any]:
        return {"api_key": "KEYpw-e2e-secret", "params": TelnyxFrameSerializer.InputParams(base_url=base_url)}

    request = rest_goodbye_call("telnyx", telnyx(), kwargs, body=b'{"data":{"result":"ok"}}')
    assert request["method"] == "POST"
    assert request["path"] == f"/v2/calls/{TELNYX_CALL_CONTROL_ID}/actions/hangup"
    assert request["authorization"] == "Bearer KEYpw-e2e-secret"
    assert json.loads(request["body"]) == {}


def test_telnyx_media_delivered_out_of_order_is_echoed_in_order() -> None:
    # Fifteen 20 ms packets, each a different pitch (a rising staircase), sent in reversed
    # groups of three (3 2 1 6 5 4 ...), as Telnyx allows: the echo must climb step by step.
    steps = [400 + 100 * i for i in range(15)]

    async def main() -> tuple[WireClient, TelnyxFrameSerializer]:
        app, calls = make_app(providers=TELNYX)
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, telnyx())
            await client.handshake()
            messages = [client.media_message(tone(f, 0.02, 8000)) for f in steps]
            t0 = time.monotonic()
            for group in range(0, len(messages), 3):
                await asyncio.sleep(max(0.0, t0 + group * 0.02 - time.monotonic()))
                for message in reversed(messages[group : group + 3]):
                    await client.send(message)
            await client.pump(3.0, idle=0.4)
            await client.close()
        return client, calls[0].transport.serializer

    client, serializer = asyncio.run(main())
    echoed = client.pcm()
    assert len(echoed) == 320 * len(steps)
    pitches = [dominant_frequency(echoed[i : i + 320], 8000) for i in range(0, len(echoed), 320)]
    assert [round(p, -1) for p in pitches] == steps
    assert serializer.reorder_stats.reordered == 5
    assert serializer.reorder_stats.lost == serializer.reorder_stats.late == 0
