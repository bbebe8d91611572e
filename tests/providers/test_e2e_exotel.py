"""Exotel end to end through a real server: the call, the missing hang-up API, and Exotel's
outbound chunk rules (formats and DTMF: test_e2e_media.py; marks and clear: test_e2e_playback.py)."""

from __future__ import annotations

import asyncio

import pytest

from phonewire.audio.analysis import tone
from phonewire.serializers.base import MediaFormat
from support.bots import KeypadBot
from support.calls import cancel_on_disconnect, wait_until
from support.echo_app import make_app
from support.server_harness import serve
from support.wire import (
    EXOTEL_ACCOUNT_SID,
    EXOTEL_CALL_SID,
    EXOTEL_FROM,
    EXOTEL_STREAM_SID,
    EXOTEL_TO,
    WireClient,
    exotel,
)

EXOTEL = ["exotel"]


def test_an_exotel_call_runs_from_connected_and_start_to_stop() -> None:
    async def main() -> None:
        app, calls = make_app(
            providers=EXOTEL,
            handlers=("on_client_connected", "on_client_disconnected"),
            on_transport=cancel_on_disconnect,
        )
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, exotel({"lang": "hi-IN", "campaign": "renewals"}))
            await client.handshake()
            await client.stream_audio(tone(440, 0.4, 8000))
            await client.expect_audio()
            await client.stop()
            await wait_until(lambda: calls[0].finished, what="the call to finish")
            await client.close()
        call = calls[0]
        info = call.transport.call_info
        assert (info.provider, info.call_id, info.stream_id) == ("exotel", EXOTEL_CALL_SID, EXOTEL_STREAM_SID)
        assert (info.account_id, info.from_number, info.to_number) == (EXOTEL_ACCOUNT_SID, EXOTEL_FROM, EXOTEL_TO)
        assert info.custom_parameters == {"lang": "hi-IN", "campaign": "renewals"}
        assert info.media_format == MediaFormat("l16", 8000, 1)
        assert [e[0] for e in call.events] == ["on_client_connected", "on_client_disconnected"]
        stats = call.transport.stats
        assert stats.close_reason == "stop"
        assert stats.protocol_error_count == 0 and stats.internal_errors == 0
        assert stats.audio_in_ms == pytest.approx(400)
        assert client.violations == []

    asyncio.run(main())


def test_ending_an_exotel_call_skips_the_rest_hang_up_and_closes_the_stream() -> None:
    async def main() -> None:
        app, calls = make_app(bot=lambda call: KeypadBot(tone(300, 0.3, 24000)), providers=EXOTEL)
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, exotel())
            await client.handshake()
            await client.dtmf("1")
            await client.dtmf("#")
            code = await client.wait_closed(timeout=5.0)
            await wait_until(lambda: calls[0].finished, what="the call to finish")
        assert code == 1000  # closing the socket is how the flow moves on to its Hangup applet
        hangup = calls[0].transport.stats.hangup
        assert hangup is not None and hangup.startswith("skipped:") and "no REST hang-up" in hangup
        assert client.pcm(), "the goodbye was played before closing"

    asyncio.run(main())


@pytest.mark.parametrize(("rate", "chunk"), [(8000, 3200), (16000, 3200), (24000, 4800)])
def test_exotel_outbound_chunks_are_multiples_of_320_bytes_and_at_least_3200_but_the_last(
    rate: int, chunk: int
) -> None:
    async def main() -> WireClient:
        app, _ = make_app(bot=lambda call: KeypadBot(tone(300, 0.45, 24000)), providers=EXOTEL)
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, exotel(sample_rate=rate))
            await client.handshake()
            await client.dtmf("1")
            await client.pump(3.0, idle=0.3)
            await client.close()
        return client

    client = asyncio.run(main())
    sizes = [len(p) for p in client.payloads]
    assert sizes and all(size % 320 == 0 for size in sizes), sizes
    assert all(size == chunk for size in sizes[:-1]), sizes  # 100 ms, never under Exotel's 3.2 KB minimum
    assert 0 < sizes[-1] <= chunk
    assert sum(sizes) == pytest.approx(0.45 * rate * 2, abs=320)
    last_media = max(i for i, (_, m) in enumerate(client.received) if client.audio_payload(m) is not None)
    assert any(client.mark_of(m) for _, m in client.received[last_media + 1 :]), "the short chunk ends the utterance"
