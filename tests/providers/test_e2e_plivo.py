"""Plivo end to end through a real server: the call, DTMF with its timestamp, hang-up, and Plivo's
numeric counters (formats: test_e2e_media.py; checkpoints and clearAudio: test_e2e_playback.py)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from phonewire.audio.analysis import tone
from phonewire.serializers.base import MediaFormat
from phonewire.serializers.plivo import PlivoFrameSerializer
from support.calls import assert_tone, dtmf_frames, wait_until
from support.echo_app import make_app
from support.provider_calls import CLOSED_BY_PEER, assert_clean_call, echo_call, keypad_call, rest_goodbye_call
from support.server_harness import serve
from support.wire import PLIVO_ACCOUNT_ID, PLIVO_CALL_ID, PLIVO_STREAM_ID, WireClient, plivo

PLIVO = ["plivo"]


def test_a_plivo_call_runs_from_start_until_plivo_closes_the_socket() -> None:
    # Plivo has no stop message: the socket just closes
    call, wire = asyncio.run(echo_call("plivo", plivo(), pcm=tone(440, 0.2, 8000), send_stop=False))
    assert call.transport is not None
    info = call.transport.call_info
    assert (info.provider, info.call_id, info.stream_id) == ("plivo", PLIVO_CALL_ID, PLIVO_STREAM_ID)
    assert info.account_id == PLIVO_ACCOUNT_ID
    assert info.custom_parameters == {"userId": "42", "sessionId": "pw-e2e"}
    assert info.media_format == MediaFormat("mulaw", 8000, 1)
    stats = call.transport.stats
    assert stats.close_reason in CLOSED_BY_PEER
    assert stats.hangup == "skipped: call already ended"
    assert_clean_call(call, wire, audio_in_ms=200)


def test_dtmf_from_plivo_reaches_the_bot_in_order_with_its_timestamp() -> None:
    async def press(wire: WireClient) -> None:
        for digit in "42*0":
            await wire.dtmf(digit)

    call, _ = asyncio.run(keypad_call("plivo", plivo(), press, digits=4))
    assert call.transport is not None
    frames = dtmf_frames(call)
    assert [f.button.value for f in frames] == ["4", "2", "*", "0"]
    assert all(f.metadata == {"timestamp": "1772446500000"} for f in frames)
    assert call.transport.stats.protocol_error_count == 0


def test_hang_up_deletes_the_plivo_call_with_basic_auth() -> None:
    def kwargs(base_url: str) -> dict[str, Any]:
        params = PlivoFrameSerializer.InputParams(base_url=base_url)
        return {"auth_id": "MAPWE2EAUTHID0000001", "auth_token": "plivo-e2e-token", "params": params}

    request = rest_goodbye_call("plivo", plivo(), kwargs, status=204)
    assert request["method"] == "DELETE"
    assert request["path"] == f"/v1/Account/MAPWE2EAUTHID0000001/Call/{PLIVO_CALL_ID}/"
    assert request["authorization"] == "Basic " + base64.b64encode(b"MAPWE2EAUTHID0000001:plivo-e2e-token").decode()
    assert request["body"] == b""


def _spelt_as_strings(message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "sequenceNumber": str(message["sequenceNumber"])}


def _last_sequence_number(client: WireClient) -> int:
    """The highest ``sequenceNumber`` the client sent."""
    return max(int(json.loads(m)["sequenceNumber"]) for m in client.sent if "sequenceNumber" in str(m))


def test_plivo_numeric_sequence_numbers_and_chunks_are_read_as_numbers() -> None:
    async def main() -> tuple[WireClient, PlivoFrameSerializer, int]:
        app, calls = make_app(providers=PLIVO)
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, plivo())
            await client.handshake()
            sender = asyncio.create_task(client.stream_audio(tone(440, 0.2, 8000)))
            await client.dtmf("5")
            await client.pump(3.0, idle=0.25)
            await sender
            await client.close()
            await wait_until(lambda: calls[0].finished, what="the call to finish")
        return client, calls[0].transport.serializer, calls[0].transport.stats.protocol_error_count

    client, serializer, errors = asyncio.run(main())
    assert errors == 0
    assert serializer.last_sequence_number == _last_sequence_number(client)  # as an int
    assert isinstance(serializer.last_sequence_number, int)
    assert_tone(client.pcm(), 8000, 440, 0.2)


def test_plivo_counters_spelt_as_strings_are_tolerated_like_its_string_sample_rate() -> None:
    # protocols.md: sequenceNumber and chunk are numbers, but one Plivo page shows sampleRate
    # as a string; a lenient reader takes digit strings for all of them and loses no audio.
    async def main() -> tuple[WireClient, PlivoFrameSerializer, int, float]:
        app, calls = make_app(providers=PLIVO)
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, plivo(content_type="audio/x-l16;rate=16000"))
            [start] = [json.loads(m) for m in client.provider.opening_messages()]
            start["start"]["mediaFormat"]["sampleRate"] = "16000"
            await client.send(_spelt_as_strings(start))
            audio = tone(5000, 0.2, 16000)
            for i in range(0, len(audio), 640):
                media = _spelt_as_strings(json.loads(client.media_message(audio[i : i + 640])))
                media["media"]["chunk"] = str(media["media"]["chunk"])
                await client.send(media)
            await client.pump(3.0, idle=0.25)
            await client.close()
            await wait_until(lambda: calls[0].finished, what="the call to finish")
        stats = calls[0].transport.stats
        return client, calls[0].transport.serializer, stats.protocol_error_count, stats.audio_in_ms

    client, serializer, errors, audio_in_ms = asyncio.run(main())
    assert errors == 0
    assert audio_in_ms == pytest.approx(200)
    assert serializer.input_format == MediaFormat("l16", 16000, 1)
    assert serializer.last_sequence_number == _last_sequence_number(client)
    assert_tone(client.pcm(), 16000, 5000, 0.2)
    assert client.violations == []
