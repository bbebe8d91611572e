"""The raw-PCM protocol end to end through a real server: the call and ending a call that has no
hang-up API (docs/raw-pcm.md; rates and DTMF: test_e2e_media.py; marks and clear:
test_e2e_playback.py)."""

from __future__ import annotations

import asyncio
import json

import pytest

from phonewire.audio.analysis import tone
from phonewire.serializers.base import MediaFormat
from support.bots import KeypadBot
from support.calls import assert_tone, cancel_on_disconnect, wait_until
from support.echo_app import make_app
from support.server_harness import serve
from support.wire import WireClient, raw_pcm

RAW = ["raw_pcm"]


def test_a_raw_pcm_call_runs_from_start_to_stop() -> None:
    async def main() -> None:
        app, calls = make_app(
            providers=RAW,
            handlers=("on_client_connected", "on_client_disconnected"),
            on_transport=cancel_on_disconnect,
        )
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, raw_pcm("demo-1"))
            # the protocol's start may name the numbers, which the simulator's client leaves out
            [start] = client.provider.opening_messages()
            await client.send({**json.loads(start), "from": "+15555550100", "to": "+15555550199"})
            await client.stream_audio(tone(440, 0.2, 16000))
            await client.expect_audio()
            await client.stop()
            await wait_until(lambda: calls[0].finished, what="the call to finish")
            await client.close()
        call = calls[0]
        info = call.transport.call_info
        assert (info.provider, info.call_id) == ("raw_pcm", "demo-1")
        assert (info.from_number, info.to_number) == ("+15555550100", "+15555550199")
        assert info.custom_parameters == {"k": "v", "n": "3"}  # non-strings as compact JSON
        assert info.media_format == MediaFormat("l16", 16000, 1)
        assert [e[0] for e in call.events] == ["on_client_connected", "on_client_disconnected"]
        stats = call.transport.stats
        assert stats.close_reason == "stop"
        assert stats.protocol_error_count == 0 and stats.internal_errors == 0
        assert stats.audio_in_ms == pytest.approx(200)
        assert client.violations == []

    asyncio.run(main())


def test_ending_a_raw_pcm_call_closes_the_socket_as_its_only_hang_up() -> None:
    async def main() -> None:
        app, calls = make_app(bot=lambda call: KeypadBot(tone(300, 0.3, 24000)), providers=RAW)
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, raw_pcm())
            await client.handshake()
            await client.dtmf("1")
            await client.dtmf("#")
            code = await client.wait_closed(timeout=5.0)
            await wait_until(lambda: calls[0].finished, what="the call to finish")
        assert code == 1000
        hangup = calls[0].transport.stats.hangup
        assert hangup is not None and hangup.startswith("skipped:") and "no hang-up API" in hangup
        assert len(client.pcm()) >= 0.3 * 16000 * 2 * 0.95, "the goodbye was played before closing"

    asyncio.run(main())


@pytest.mark.parametrize(
    "first",
    [
        tone(440, 0.02, 16000),
        '{"event":"dtmf","digit":"5"}',
        '{"uuid":"fs-0001","sample_rate":16000}',
        "campaign-42",
    ],
    ids=["binary-audio", "dtmf-before-any-start", "freeswitch-json-metadata", "freeswitch-text-metadata"],
)
def test_a_raw_pcm_stream_opening_without_a_start_message_is_served(first: str | bytes) -> None:
    async def main() -> tuple[WireClient, BaseException | None]:
        app, calls = make_app(providers=RAW, handshake_timeout=0.5)
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, raw_pcm())
            await client.send(first)
            await client.stream_audio(tone(440, 0.3, 16000), realtime=False)
            await client.pump(1.5, idle=0.3)
            await client.close()
        return client, calls[0].error

    client, error = asyncio.run(main())
    assert error is None
    assert_tone(client.pcm(), 16000, 440, 0.3)
