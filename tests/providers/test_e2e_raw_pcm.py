"""The raw-PCM protocol end to end through a real server: the call and ending a call that has no
hang-up API (docs/raw-pcm.md; rates and DTMF: test_e2e_media.py; marks and clear:
test_e2e_playback.py)."""

from __future__ import annotations

import asyncio
import json

import pytest

from phonewire.audio.analysis import tone
from phonewire.serializers.base import MediaFormat
from support.calls import assert_tone
from support.echo_app import make_app
from support.provider_calls import assert_clean_call, echo_call, goodbye_call
from support.server_harness import serve
from support.wire import WireClient, raw_pcm


async def _start_with_numbers(wire: WireClient) -> None:
    # the protocol's start may name the numbers, which the simulator's client leaves out
    [start] = wire.provider.opening_messages()
    await wire.send({**json.loads(start), "from": "+15555550100", "to": "+15555550199"})


def test_a_raw_pcm_call_runs_from_start_to_stop() -> None:
    call, wire = asyncio.run(
        echo_call("raw_pcm", raw_pcm("demo-1"), pcm=tone(440, 0.2, 16000), opening=_start_with_numbers)
    )
    assert call.transport is not None
    info = call.transport.call_info
    assert (info.provider, info.call_id) == ("raw_pcm", "demo-1")
    assert (info.from_number, info.to_number) == ("+15555550100", "+15555550199")
    assert info.custom_parameters == {"k": "v", "n": "3"}  # non-strings as compact JSON
    assert info.media_format == MediaFormat("l16", 16000, 1)
    assert call.transport.stats.close_reason == "stop"
    assert_clean_call(call, wire, audio_in_ms=200)


def test_ending_a_raw_pcm_call_closes_the_socket_as_its_only_hang_up() -> None:
    goodbye = asyncio.run(goodbye_call("raw_pcm", raw_pcm()))
    assert goodbye.code == 1000
    assert goodbye.hangup is not None and goodbye.hangup.startswith("skipped:") and "no hang-up API" in goodbye.hangup
    assert len(goodbye.wire.pcm()) >= 0.3 * 16000 * 2 * 0.95, "the goodbye was played before closing"


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
        app, calls = make_app(providers=["raw_pcm"], handshake_timeout=0.5)
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
