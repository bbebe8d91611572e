"""The simulator's provider clients beyond Twilio: Telnyx, Plivo, Exotel, Vonage and raw PCM.

Three layers (two of them here):

* message formats, sans-I/O: what each client sends, and how it judges what the bot sends;
* interop, sans-I/O, lives in tests/serializers/test_serializer_contract.py (each client's
  messages through our own detection and serializer, and the serializer's output back);
* one whole simulated call per provider against the real phonewire server running the demo
  bot, with the call set up through the server's webhook (stream token included) and, where
  the provider has one, the REST hang-up answered by ``FakeProviderAPI``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from phonewire.audio.analysis import tone
from phonewire.audio.g711 import pcm_to_ulaw, ulaw_to_pcm
from phonewire.demo.app import make_app
from phonewire.exceptions import ConfigurationError
from phonewire.serializers.base import HangupOutcome
from phonewire.serializers.plivo import PlivoFrameSerializer
from phonewire.serializers.telnyx import TelnyxFrameSerializer
from phonewire.serializers.vonage import VonageFrameSerializer
from phonewire.server import ServerConfig
from phonewire.telephony.hangup import perform_hangup
from phonewire.testing import (
    BargeIn,
    CallReport,
    FakeProviderAPI,
    Press,
    Say,
    Step,
    WaitForBotAudio,
    WaitForBotReply,
    WaitForHangup,
    builtin_recording,
    cli_call,
    simulate_call,
)
from phonewire.testing.providers import (
    PROVIDERS,
    Clear,
    ExotelClient,
    Mark,
    PlayAudio,
    PlivoClient,
    ProtocolViolation,
    ProviderClient,
    RawPCMClient,
    SendDTMF,
    TelnyxClient,
    TwilioClient,
    VonageClient,
    create_provider,
)
from support.server_harness import serve
from support.signed_webhooks import credentials, signed_answer
from testing.fake_bot import run

NEW_PROVIDERS = ("telnyx", "plivo", "exotel", "vonage", "raw_pcm")


def load(message: str | bytes | None) -> dict[str, Any]:
    assert isinstance(message, str)
    return json.loads(message)


def dumps(message: Any) -> str:
    return json.dumps(message, separators=(",", ":"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def speech(rate: int, ms: int = 20) -> bytes:
    """A loud 20 ms (by default) tone at ``rate``, s16le."""
    return tone(440, ms / 1000, rate)


def only(commands: list[Any], kind: type) -> Any:
    [command] = commands
    assert isinstance(command, kind), command
    return command


# ------------------------------------------------------------------------------------ registry


def test_every_provider_is_registered_and_created_by_name() -> None:
    expected = {
        "twilio": TwilioClient,
        "telnyx": TelnyxClient,
        "plivo": PlivoClient,
        "exotel": ExotelClient,
        "vonage": VonageClient,
        "raw_pcm": RawPCMClient,
    }
    assert {name: PROVIDERS[name] for name in expected} == expected
    for name, cls in expected.items():
        client = create_provider(name.upper(), custom_parameters={"k": "v"})
        assert isinstance(client, cls) and client.name == name
        assert client.opening_messages() or name == "raw_pcm"


def test_the_cli_offers_every_provider() -> None:
    parser = argparse.ArgumentParser()
    cli_call.add_arguments(parser)
    for name in NEW_PROVIDERS:
        assert parser.parse_args(["ws://127.0.0.1:1/ws", "--provider", name]).provider == name
    with pytest.raises(SystemExit):
        parser.parse_args(["ws://127.0.0.1:1/ws", "--provider", "carrier-pigeon"])


@pytest.mark.parametrize("name", NEW_PROVIDERS)
def test_each_packet_is_the_providers_packet_length_of_silence_or_speech(name: str) -> None:
    client = create_provider(name)
    fmt = client.wire_format
    assert client.samples_per_packet == fmt.sample_rate * client.packet_ms // 1000
    assert client.packet_ms == (100 if name == "exotel" else 20)
    pcm = speech(fmt.sample_rate, client.packet_ms)
    assert len(client.encode(pcm)) == fmt.bytes_per_sample * client.samples_per_packet


FUZZ_KEYS = ["event", "action", "stream_id", "streamId", "stream_sid", "media", "mark", "payload", "name",
             "contentType", "sampleRate", "dtmf", "digits"]  # fmt: skip


@given(
    st.one_of(
        st.binary(max_size=96),
        st.text(max_size=64),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda children: (
                st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(FUZZ_KEYS), children, max_size=4)
            ),
            max_leaves=8,
        ).map(json.dumps),
    ),
    st.sampled_from(NEW_PROVIDERS),
)
@settings(max_examples=300)
def test_parsing_any_message_never_raises(message: str | bytes, name: str) -> None:
    commands = create_provider(name).parse_server_message(message)
    assert all(isinstance(c, PlayAudio | Mark | Clear | SendDTMF | ProtocolViolation) for c in commands)


# -------------------------------------------------------------------------------------- Telnyx

T_STREAM = "32DE0DEA-53CB-4B21-89A4-9E1819C043BC"
T_CALL = "v3:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ"


def telnyx(**kwargs: Any) -> TelnyxClient:
    defaults: dict[str, Any] = {
        "stream_id": T_STREAM,
        "call_control_id": T_CALL,
        "user_id": "U1",
        "call_session_id": "S1",
    }
    return TelnyxClient(**(defaults | kwargs))


def test_telnyx_opens_with_connected_then_start_carrying_the_call_and_media_format() -> None:
    connected, start = map(load, telnyx(custom_parameters={"customer_id": 7}).opening_messages())
    assert connected == {"event": "connected", "version": "1.0.0"}
    assert start == {
        "event": "start",
        "sequence_number": "1",
        "start": {
            "user_id": "U1",
            "call_control_id": T_CALL,
            "call_session_id": "S1",
            "from": "+13125550100",
            "to": "+13125550199",
            "tags": [],
            "custom_parameters": {"customer_id": "7"},
            "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
        },
        "stream_id": T_STREAM,
    }


@pytest.mark.parametrize(
    ("kwargs", "encoding", "rate"),
    [
        ({"codec": "PCMA"}, "PCMA", 8000),
        ({"codec": "L16"}, "L16", 16000),
        ({"codec": "L16", "sample_rate": 8000}, "L16", 8000),
    ],
)
def test_telnyx_offers_pcma_and_l16_at_8_or_16_khz(kwargs: dict[str, Any], encoding: str, rate: int) -> None:
    client = telnyx(**kwargs)
    start = load(client.opening_messages()[1])
    assert start["start"]["media_format"] == {"encoding": encoding, "sample_rate": rate, "channels": 1}
    assert client.wire_format.sample_rate == rate


def test_telnyx_bot_media_is_decoded_with_the_bidirectional_codec() -> None:
    client = telnyx(codec="PCMA", bidirectional_codec="PCMU")
    assert load(client.opening_messages()[1])["start"]["media_format"]["encoding"] == "PCMA"
    pcm = ulaw_to_pcm(pcm_to_ulaw(speech(8000)))
    media = {"event": "media", "media": {"payload": b64(pcm_to_ulaw(pcm))}}
    assert client.parse_server_message(dumps(media)) == [PlayAudio(pcm)]
    with pytest.raises(ConfigurationError, match="L16 both ways"):
        telnyx(codec="PCMU", bidirectional_codec="L16")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"codec": "G729"},
        {"codec": "PCMU", "sample_rate": 16000},
        {"codec": "L16", "sample_rate": 24000},
        {"codec": "L16", "l16_byte_order": "middle"},
    ],
)
def test_telnyx_refuses_formats_it_does_not_stream(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        telnyx(**kwargs)


def test_telnyx_counters_are_strings_and_the_sequence_counts_every_message() -> None:
    client = telnyx()
    client.opening_messages()
    first = load(client.media_message(b"\xff" * 160))
    dtmf = load(client.dtmf_message("5"))
    second = load(client.media_message(b"\xff" * 160))
    echo = load(client.mark_echo("m1"))
    stop = load(client.stop_message())
    assert [m["sequence_number"] for m in (first, dtmf, second, echo, stop)] == ["2", "3", "4", "5", "6"]
    assert first == {
        "event": "media",
        "sequence_number": "2",
        "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": b64(b"\xff" * 160)},
        "stream_id": T_STREAM,
    }
    assert (second["media"]["chunk"], second["media"]["timestamp"]) == ("2", "20")
    assert echo == {"event": "mark", "stream_id": T_STREAM, "sequence_number": "5", "mark": {"name": "m1"}}
    assert stop == {
        "event": "stop",
        "sequence_number": "6",
        "stop": {"user_id": "U1", "call_control_id": T_CALL},
        "stream_id": T_STREAM,
    }
    assert set(dtmf) == {"event", "stream_id", "occurred_at", "sequence_number", "dtmf"}
    assert dtmf["dtmf"] == {"digit": "5"}


def test_telnyx_dtmf_occurred_at_follows_the_stream_clock_and_never_repeats() -> None:
    from datetime import UTC, datetime

    client = telnyx(started_at=datetime(2026, 3, 2, 10, 15, 0, tzinfo=UTC))
    first = load(client.dtmf_message("1"))["occurred_at"]
    again = load(client.dtmf_message("1"))["occurred_at"]
    for _ in range(5):
        client.media_message(b"\xff" * 160)
    later = load(client.dtmf_message("1"))["occurred_at"]
    assert first == "2026-03-02T10:15:00.000000Z"
    assert again == "2026-03-02T10:15:00.000001Z"  # Telnyx de-duplicates equal (occurred_at, digit)
    assert later == "2026-03-02T10:15:00.100000Z"


def test_telnyx_stream_auth_token_goes_on_the_upgrade_and_in_connected() -> None:
    client = telnyx(stream_auth_token="tok")
    assert client.upgrade_headers("wss://h/ws") == {"x-telnyx-streaming-auth-token": "tok"}
    assert load(client.opening_messages()[0])["x-telnyx-streaming-auth-token"] == "tok"
    assert telnyx().upgrade_headers("wss://h/ws") == {}


def test_telnyx_bot_media_marks_and_clears_become_commands() -> None:
    client = telnyx()
    pcm = ulaw_to_pcm(pcm_to_ulaw(speech(8000)))
    media = {"event": "media", "media": {"payload": b64(pcm_to_ulaw(pcm))}}
    assert client.parse_server_message(dumps(media)) == [PlayAudio(pcm)]
    assert client.parse_server_message(dumps({**media, "stream_id": T_STREAM})) == [PlayAudio(pcm)]
    assert client.parse_server_message(dumps({"event": "mark", "mark": {"name": "x"}})) == [Mark("x")]
    assert client.parse_server_message('{"event":"clear"}') == [Clear()]


def test_telnyx_l16_is_big_endian_on_the_wire_by_default() -> None:
    pcm = speech(16000)
    big = np.frombuffer(pcm, "<i2").astype(">i2").tobytes()
    client = telnyx(codec="L16")
    assert client.encode(pcm) == big
    assert client.parse_server_message(dumps({"event": "media", "media": {"payload": b64(big)}})) == [PlayAudio(pcm)]
    little = telnyx(codec="L16", l16_byte_order="little")
    assert little.encode(pcm) == pcm and little.decode(pcm) == pcm


@pytest.mark.parametrize(
    ("message", "code", "words"),
    [
        (b"\x00\x01", 100003, "binary"),
        ("{nope", 100003, "JSON"),
        ("[]", 100003, "object"),
        (dumps({"event": "playAudio"}), 100003, "unknown event"),
        (dumps({"event": "clear", "stream_id": "other"}), 100003, "another stream_id"),
        (dumps({"event": "media", "media": {}}), 100003, "payload"),
        (dumps({"event": "media", "media": {"payload": "@@@"}}), 100004, "base64"),
        (dumps({"event": "mark", "mark": {}}), 100003, "mark.name"),
    ],
)
def test_telnyx_rejects_what_telnyx_would(message: str | bytes, code: int, words: str) -> None:
    violation = only(telnyx().parse_server_message(message), ProtocolViolation)
    assert violation.code == code and words in violation.reason


def test_telnyx_flags_media_shorter_than_20_ms_but_plays_it() -> None:
    short = pcm_to_ulaw(speech(8000, 10))
    violation, play = telnyx().parse_server_message(dumps({"event": "media", "media": {"payload": b64(short)}}))
    assert isinstance(violation, ProtocolViolation) and "20 ms" in violation.reason
    assert play == PlayAudio(ulaw_to_pcm(short))


# --------------------------------------------------------------------------------------- Plivo

P_CALL = "12345678-1234-1234-1234-123456789abc"
P_STREAM = "87654321-4321-4321-4321-cba987654321"


def plivo(**kwargs: Any) -> PlivoClient:
    defaults: dict[str, Any] = {
        "call_id": P_CALL,
        "stream_id": P_STREAM,
        "account_id": "MA0123456789ABCDEFGH",
        "start_timestamp_ms": 1705312200000,
    }
    return PlivoClient(**(defaults | kwargs))


def test_plivo_opens_with_start_only_and_extra_headers_carry_the_custom_parameters() -> None:
    [start] = map(load, plivo(custom_parameters={"userId": 12345, "sessionId": "abc"}).opening_messages())
    assert start == {
        "event": "start",
        "sequenceNumber": 1,
        "start": {
            "callId": P_CALL,
            "streamId": P_STREAM,
            "accountId": "MA0123456789ABCDEFGH",
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
        },
        "extra_headers": "userId=12345;sessionId=abc",
    }


def test_plivo_counters_are_numbers_timestamps_strings_and_there_is_no_stop() -> None:
    client = plivo(custom_parameters={"k": "v"})
    client.opening_messages()
    first = load(client.media_message(b"\xff" * 160))
    second = load(client.media_message(b"\xff" * 160))
    dtmf = load(client.dtmf_message("#"))
    echo = load(client.mark_echo("greeting-complete"))
    cleared = load(client.clear_ack())
    assert first == {
        "event": "media",
        "sequenceNumber": 2,
        "streamId": P_STREAM,
        "media": {"track": "inbound", "timestamp": "1705312200000", "chunk": 1, "payload": b64(b"\xff" * 160)},
        "extra_headers": "k=v",
    }
    assert (second["sequenceNumber"], second["media"]["chunk"], second["media"]["timestamp"]) == (3, 2, "1705312200020")
    assert dtmf == {
        "event": "dtmf",
        "sequenceNumber": 4,
        "streamId": P_STREAM,
        "dtmf": {"track": "inbound", "digit": "#", "timestamp": "1705312200040"},
        "extra_headers": "k=v",
    }
    assert echo == {"event": "playedStream", "sequenceNumber": 5, "streamId": P_STREAM, "name": "greeting-complete"}
    assert cleared == {"event": "clearedAudio", "sequenceNumber": 6, "streamId": P_STREAM}
    assert client.stop_message() is None


@pytest.mark.parametrize(
    ("content_type", "encoding", "rate"),
    [("audio/x-l16;rate=8000", "audio/x-l16", 8000), ("audio/x-l16;rate=16000", "audio/x-l16", 16000)],
)
def test_plivo_offers_l16_at_8_or_16_khz(content_type: str, encoding: str, rate: int) -> None:
    client = plivo(content_type=content_type)
    [start] = map(load, client.opening_messages())
    assert start["start"]["mediaFormat"] == {"encoding": encoding, "sampleRate": rate}
    pcm = speech(rate)
    assert client.encode(pcm) == pcm
    message = {"event": "playAudio", "media": {"contentType": encoding, "sampleRate": rate, "payload": b64(pcm)}}
    assert client.parse_server_message(dumps(message)) == [PlayAudio(pcm)]
    with pytest.raises(ConfigurationError):
        plivo(content_type="audio/x-mulaw;rate=16000")


def test_plivo_bot_messages_become_commands() -> None:
    client = plivo()
    pcm = ulaw_to_pcm(pcm_to_ulaw(speech(8000)))
    play = {"event": "playAudio", "media": {"contentType": "audio/x-mulaw", "sampleRate": 8000,
                                            "payload": b64(pcm_to_ulaw(pcm))}}  # fmt: skip
    assert client.parse_server_message(dumps(play)) == [PlayAudio(pcm)]
    checkpoint = {"event": "checkpoint", "streamId": P_STREAM, "name": "c1"}
    assert client.parse_server_message(dumps(checkpoint)) == [Mark("c1")]
    assert client.parse_server_message(dumps({"event": "clearAudio", "streamId": P_STREAM})) == [Clear()]
    assert client.parse_server_message(dumps({"event": "sendDTMF", "dtmf": "12#"})) == [SendDTMF("12#")]


@pytest.mark.parametrize(
    ("message", "words"),
    [
        (b"\x00", "binary"),
        ("{", "JSON"),
        (dumps({"event": "media", "media": {}}), "unknown event"),
        (dumps({"event": "playAudio", "media": {"contentType": "audio/x-l16", "sampleRate": 8000, "payload": ""}}),
         "contentType"),
        (dumps({"event": "playAudio", "media": {"contentType": "audio/x-mulaw", "sampleRate": 16000, "payload": ""}}),
         "sampleRate"),
        (dumps({"event": "playAudio", "media": {"contentType": "audio/x-mulaw", "sampleRate": 8000, "payload": "!"}}),
         "base64"),
        (dumps({"event": "checkpoint", "name": "c1"}), "without streamId"),
        (dumps({"event": "clearAudio", "streamId": "other"}), "another streamId"),
        (dumps({"event": "checkpoint", "streamId": P_STREAM}), "name"),
        (dumps({"event": "sendDTMF", "dtmf": "12x"}), "digits"),
        (dumps({"event": "playAudio", "media": {"contentType": "audio/x-mulaw", "sampleRate": 8000,
                                                 "payload": "/" * 70_000}}), "64 KB"),
    ],
)  # fmt: skip
def test_plivo_rejects_what_plivo_would(message: str | bytes, words: str) -> None:
    violation = only(plivo().parse_server_message(message), ProtocolViolation)
    assert words in violation.reason


def test_plivo_warns_about_extra_headers_it_would_mangle() -> None:
    assert plivo(custom_parameters={"phonewireToken": "a-b_c"}).url_warnings("wss://h/ws") == []
    [key] = plivo(custom_parameters={"from_number": "+1"}).url_warnings("wss://h/ws")
    assert "alphanumeric" in key
    [value] = plivo(custom_parameters={"k": "a;b"}).url_warnings("wss://h/ws")
    assert "';'" in value


# -------------------------------------------------------------------------------------- Exotel

E_STREAM, E_CALL, E_ACCOUNT = "MZ1", "CA1", "AC1"


def exotel(**kwargs: Any) -> ExotelClient:
    return ExotelClient(**({"stream_sid": E_STREAM, "call_sid": E_CALL, "account_sid": E_ACCOUNT} | kwargs))


def test_exotel_opens_with_connected_then_start_where_every_number_is_a_string() -> None:
    connected, start = map(load, exotel(sample_rate=16000, custom_parameters={"lang": "hi"}).opening_messages())
    assert connected == {"event": "connected"}
    assert start == {
        "event": "start",
        "sequence_number": "1",
        "stream_sid": E_STREAM,
        "start": {
            "stream_sid": E_STREAM,
            "call_sid": E_CALL,
            "account_sid": E_ACCOUNT,
            "from": "+919800000001",
            "to": "+918000000002",
            "custom_parameters": {"lang": "hi"},
            "media_format": {"encoding": "audio/x-raw", "sample_rate": "16000", "bit_rate": "16"},
        },
    }
    with pytest.raises(ConfigurationError):
        exotel(sample_rate=44100)


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_exotel_media_is_100_ms_of_pcm_per_message(rate: int) -> None:
    client = exotel(sample_rate=rate)
    assert client.packet_ms == 100 and client.samples_per_packet == rate // 10
    client.opening_messages()
    pcm = speech(rate, 100)
    first = load(client.media_message(client.encode(pcm)))
    second = load(client.media_message(client.encode(pcm)))
    assert first == {
        "event": "media",
        "sequence_number": "2",
        "stream_sid": E_STREAM,
        "media": {"chunk": "1", "timestamp": "100", "payload": b64(pcm)},
    }
    assert (second["sequence_number"], second["media"]["chunk"], second["media"]["timestamp"]) == ("3", "2", "200")


def test_exotel_dtmf_mark_echo_and_stop_shapes() -> None:
    client = exotel(dtmf_duration_ms=120)
    client.opening_messages()
    assert load(client.dtmf_message("5")) == {
        "event": "dtmf",
        "sequence_number": "2",
        "stream_sid": E_STREAM,
        "dtmf": {"digit": "5", "duration": "120"},
    }
    assert load(client.mark_echo("turn-3")) == {
        "event": "mark",
        "sequence_number": "3",
        "stream_sid": E_STREAM,
        "mark": {"name": "turn-3"},
    }
    assert load(client.stop_message()) == {
        "event": "stop",
        "sequence_number": "4",
        "stream_sid": E_STREAM,
        "stop": {"call_sid": E_CALL, "account_sid": E_ACCOUNT, "reason": "callended"},
    }
    assert ExotelClient.hangup_route is None and client.clear_ack() is None


def test_exotel_bot_messages_become_commands() -> None:
    client = exotel()
    pcm = speech(8000, 200)  # 3200 bytes: Exotel's minimum chunk
    media = {"event": "media", "stream_sid": E_STREAM, "media": {"payload": b64(pcm)}}
    assert client.parse_server_message(dumps(media)) == [PlayAudio(pcm)]
    assert client.parse_server_message(dumps({"event": "mark", "stream_sid": E_STREAM, "mark": {"name": "m"}})) == [
        Mark("m")
    ]
    assert client.parse_server_message(dumps({"event": "clear", "stream_sid": E_STREAM})) == [Clear()]


def test_exotel_flags_chunks_that_are_not_multiples_of_320_bytes_and_plays_the_gap() -> None:
    pcm = speech(8000, 30)  # 480 bytes: one 320-byte packet and a 160-byte tail
    message = {"event": "media", "stream_sid": E_STREAM, "media": {"payload": b64(pcm)}}
    violation, play = exotel().parse_server_message(dumps(message))
    assert isinstance(violation, ProtocolViolation) and "multiple of 320" in violation.reason
    assert play == PlayAudio(pcm + bytes(160))  # the tail still takes a whole 20 ms slot


@pytest.mark.parametrize(
    ("message", "words"),
    [
        (b"\x00", "binary"),
        ("nope", "JSON"),
        (dumps({"event": "playAudio", "stream_sid": E_STREAM}), "unknown event"),
        (dumps({"event": "clear"}), "without stream_sid"),
        (dumps({"event": "clear", "stream_sid": "MZ2"}), "another stream_sid"),
        (dumps({"event": "media", "stream_sid": E_STREAM, "media": {"payload": "%%"}}), "base64"),
        (dumps({"event": "mark", "stream_sid": E_STREAM, "mark": {"name": 3}}), "mark.name"),
    ],
)
def test_exotel_rejects_what_exotel_would(message: str | bytes, words: str) -> None:
    assert words in only(exotel().parse_server_message(message), ProtocolViolation).reason


def test_exotel_warns_about_urls_and_parameters_it_would_not_honour() -> None:
    assert exotel().url_warnings("wss://h/ws?sample-rate=8000&a=1") == []
    [rate] = exotel().url_warnings("wss://h/ws?sample-rate=16000")
    assert "sample-rate=16000" in rate
    [many] = exotel(custom_parameters={"a": 1, "b": 2, "c": 3, "d": 4}).url_warnings("wss://h/ws")
    assert "at most 3" in many


# -------------------------------------------------------------------------------------- Vonage

V_UUID = "63f61863-4a51-4f6b-86e1-46edebcf9356"


def test_vonage_opens_with_websocket_connected_and_the_headers_flattened() -> None:
    client = VonageClient(call_uuid=V_UUID, custom_parameters={"language": "en-GB", "tier": 2})
    assert client.opening_messages() == [
        dumps(
            {
                "event": "websocket:connected",
                "content-type": "audio/l16;rate=16000",
                "language": "en-GB",
                "tier": 2,
                "call_uuid": V_UUID,
            }
        )
    ]
    assert client.call_id == V_UUID and client.stream_id is None
    eight = VonageClient(sample_rate=8000, custom_parameters={"call_uuid": V_UUID})
    assert eight.call_id == V_UUID  # an NCCO's headers pass through unchanged
    assert load(eight.opening_messages()[0])["content-type"] == "audio/l16;rate=8000"
    with pytest.raises(ConfigurationError):
        VonageClient(sample_rate=11025)


def test_vonage_audio_is_binary_20_ms_frames_and_control_is_json() -> None:
    client = VonageClient(call_uuid=V_UUID)
    pcm = speech(16000)
    assert client.media_message(client.encode(pcm)) == pcm and len(pcm) == 640
    assert load(client.dtmf_message("5")) == {"event": "websocket:dtmf", "digit": "5", "duration": 260}
    assert load(client.clear_ack()) == {"event": "websocket:cleared"}
    assert client.stop_message() is None


def test_vonage_bot_messages_become_commands_and_notify_is_echoed_with_its_payload() -> None:
    client = VonageClient(call_uuid=V_UUID)
    pcm = speech(16000)
    assert client.parse_server_message(pcm) == [PlayAudio(pcm)]
    assert client.parse_server_message('{"action":"clear"}') == [Clear()]
    notify = {"action": "notify", "payload": {"mark": "u1", "turn": 3}}
    assert client.parse_server_message(dumps(notify)) == [Mark("u1")]
    assert load(client.mark_echo("u1")) == {"event": "websocket:notify", "payload": {"mark": "u1", "turn": 3}}
    # An application's own notify (no "mark") is echoed with its payload all the same.
    [mark] = client.parse_server_message(dumps({"action": "notify", "payload": {"step": "x"}}))
    assert load(client.mark_echo(mark.name)) == {"event": "websocket:notify", "payload": {"step": "x"}}


@pytest.mark.parametrize(("size", "plays"), [(320, True), (1280, True), (641, True), (0, False)])
def test_vonage_flags_binary_frames_that_are_not_exactly_20_ms(size: int, plays: bool) -> None:
    commands = VonageClient(call_uuid=V_UUID).parse_server_message(bytes(size))
    assert isinstance(commands[0], ProtocolViolation) and "exactly 20 ms (640 bytes" in commands[0].reason
    assert (len(commands) == 2) == plays


@pytest.mark.parametrize(
    ("message", "words"),
    [("{", "JSON"), ('{"action":"talk"}', "unknown"), ('{"action":"notify","payload":"x"}', "payload")],
)
def test_vonage_rejects_what_vonage_would(message: str, words: str) -> None:
    assert words in only(VonageClient().parse_server_message(message), ProtocolViolation).reason


# ------------------------------------------------------------------------------------- raw PCM


def test_raw_pcm_opens_with_an_optional_start() -> None:
    client = RawPCMClient(call_id="c-1", sample_rate=8000, custom_parameters={"k": "v", "n": 3})
    assert client.opening_messages() == [
        dumps({"event": "start", "call_id": "c-1", "sample_rate": 8000, "custom_parameters": {"k": "v", "n": 3}})
    ]
    assert RawPCMClient(send_start=False).opening_messages() == []
    with pytest.raises(ConfigurationError):
        RawPCMClient(sample_rate=11025)


def test_raw_pcm_messages_both_ways() -> None:
    client = RawPCMClient(call_id="c-1")
    pcm = speech(16000)
    assert client.media_message(client.encode(pcm)) == pcm
    assert load(client.dtmf_message("7")) == {"event": "dtmf", "digit": "7"}
    assert load(client.mark_echo("u1")) == {"event": "mark", "name": "u1"}
    assert load(client.clear_ack()) == {"event": "cleared"}
    assert load(client.stop_message()) == {"event": "stop", "reason": "hangup"}
    assert client.parse_server_message(pcm) == [PlayAudio(pcm)]
    assert client.parse_server_message('{"event":"mark","name":"u1"}') == [Mark("u1")]
    assert client.parse_server_message('{"event":"clear"}') == [Clear()]
    assert client.parse_server_message('{"event":"dtmf","digits":"12#"}') == [SendDTMF("12#")]
    assert client.parse_server_message('{"event":"message","data":{"any":1}}') == []


@pytest.mark.parametrize(
    ("message", "words"),
    [
        (b"\x00\x01\x02", "odd-length"),
        ("hello", "JSON"),
        ('{"event":"mark"}', "name"),
        ('{"event":"dtmf","digits":"x"}', "digits"),
        ('{"event":"media"}', "unknown event"),
    ],
)
def test_raw_pcm_rejects_what_the_protocol_forbids(message: str | bytes, words: str) -> None:
    assert words in only(RawPCMClient().parse_server_message(message), ProtocolViolation).reason


# ------------------------------------------------------------------------- REST hang-up routes

SERIALIZERS: dict[str, Callable[[str, str], Any]] = {
    "telnyx": lambda base, call: TelnyxFrameSerializer(
        "S", call_control_id=call, api_key="KEY", params=TelnyxFrameSerializer.InputParams(base_url=base)
    ),
    "plivo": lambda base, call: PlivoFrameSerializer(
        "S", call_id=call, auth_id="MAAUTH", auth_token="tok", params=PlivoFrameSerializer.InputParams(base_url=base)
    ),
    "vonage": lambda base, call: VonageFrameSerializer(
        VonageFrameSerializer.InputParams(base_url=base), call_uuid=call, application_id="app", private_key=_pem()
    ),
}
CALL_IDS = {"telnyx": T_CALL, "plivo": P_CALL, "vonage": V_UUID}


def _pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize("name", sorted(SERIALIZERS))
def test_the_fake_api_answers_our_serializers_hang_up_like_the_provider(name: str) -> None:
    async def scenario() -> None:
        async with FakeProviderAPI() as api:
            ended: list[str] = []
            api.register_call(CALL_IDS[name], lambda: ended.append(name))
            request = SERIALIZERS[name](api.base_url, CALL_IDS[name]).hangup_request()
            assert await perform_hangup(request) is HangupOutcome.DONE
            [seen] = api.hangups(CALL_IDS[name])
            assert seen.provider == name and ended == [name]
            api.mode = "not_found"
            assert await perform_hangup(request) is HangupOutcome.ALREADY_ENDED

    run(scenario())


def test_vonage_puts_that_are_not_a_hangup_are_not_counted_as_one() -> None:
    async def scenario() -> None:
        async with FakeProviderAPI() as api, httpx.AsyncClient(base_url=api.base_url) as http:
            muted = await http.put(f"/v1/calls/{V_UUID}", json={"action": "mute"})
            hung_up = await http.put(f"/v1/calls/{V_UUID}", json={"action": "hangup"})
            assert (muted.status_code, hung_up.status_code) == (204, 204)
            assert [r.json for r in api.hangups(V_UUID)] == [{"action": "hangup"}]

    run(scenario())


# ------------------------------------------------------------------ whole calls, real server

SECRET = "phonewire-test-stream-secret-0123456789"
THANKS = Say.from_wav(builtin_recording("thanks"))


def short_script() -> list[Step]:
    """About 7 s: talk over the greeting, hear the demo bot repeat it, press # for goodbye."""
    return [
        WaitForBotAudio(timeout=5),
        BargeIn(0.5, THANKS.pcm, THANKS.rate, label="thanks"),
        WaitForBotReply(timeout=8, min_silence=0.5),
        Press("#"),
        WaitForHangup(timeout=6),
    ]


def _config(api: FakeProviderAPI) -> ServerConfig:
    return ServerConfig(
        vad="silero",
        providers=None,
        stream_scheme="ws",
        public_host=None,
        stream_secret=SECRET,
        require_stream_token=False,  # raw PCM has no webhook to get one from
        **credentials(),  # every webhook refuses what it cannot verify (issue 11)
        telnyx_stream_token=None,
        serializer_kwargs={
            "telnyx": {"api_key": "KEY", "params": TelnyxFrameSerializer.InputParams(base_url=api.base_url)},
            "plivo": {
                "auth_id": "MAAUTH",
                "auth_token": "tok",
                "params": PlivoFrameSerializer.InputParams(base_url=api.base_url),
            },
            "vonage": {
                "application_id": "app-1",
                "private_key": _pem(),
                "params": VonageFrameSerializer.InputParams(base_url=api.base_url),
            },
        },
    )


async def _set_up_call(http: httpx.AsyncClient, hostport: str, name: str) -> tuple[str, ProviderClient]:
    """Ask the server's webhook for the stream, as the provider would; returns (URL, client)."""
    base = f"http://{hostport}"
    if name == "telnyx":
        call = "v3:" + uuid.uuid4().hex
        doc = ET.fromstring((await signed_answer(http, base, "telnyx", {"CallControlId": call})).text)
        stream = doc.find("./Connect/Stream")
        assert stream is not None and stream.get("bidirectionalMode") == "rtp"
        params = {p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")}
        return stream.get("url", ""), TelnyxClient(call_control_id=call, custom_parameters=params)
    if name == "plivo":
        call = str(uuid.uuid4())
        doc = ET.fromstring((await signed_answer(http, base, "plivo", {"CallUUID": call})).text)
        stream = doc.find("./Stream")
        assert stream is not None and stream.get("keepCallAlive") == "true"
        params = dict(p.split("=", 1) for p in stream.get("extraHeaders", "").split(";"))
        client = PlivoClient(call_id=call, account_id="MAAUTH", custom_parameters=params,
                             content_type=stream.get("contentType", ""))  # fmt: skip
        return (stream.text or "").strip(), client
    if name == "vonage":
        call = str(uuid.uuid4())
        [connect] = (await signed_answer(http, base, "vonage", {"uuid": call}, method="GET")).json()
        [endpoint] = connect["endpoint"]
        rate = int(endpoint["content-type"].rsplit("=", 1)[1])
        return endpoint["uri"], VonageClient(sample_rate=rate, custom_parameters=endpoint["headers"])
    if name == "exotel":
        call = "CA" + uuid.uuid4().hex
        url = (await signed_answer(http, base, "exotel", {"CallSid": call}, method="GET")).json()["url"]
        query = dict(parse_qsl(urlsplit(url).query))
        rate = int(query.pop("sample-rate"))
        return url, ExotelClient(call_sid=call, sample_rate=rate, custom_parameters=query)
    return f"ws://{hostport}/ws", RawPCMClient()


async def _wait_for_server(app: Any) -> Any:
    """The server records a call's stats when its bot task ends, shortly after the socket closes."""
    metrics = app.state.metrics
    deadline = time.monotonic() + 5
    while (metrics.active or not metrics.calls) and time.monotonic() < deadline:  # noqa: ASYNC110 (a counter, no event)
        await asyncio.sleep(0.02)
    return metrics


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW_PROVIDERS)
def test_a_whole_call_to_the_demo_bot_as_each_provider(name: str) -> None:
    async def scenario() -> tuple[CallReport, ProviderClient, FakeProviderAPI, Any]:
        async with FakeProviderAPI() as api:
            app = make_app(_config(api))
            async with serve(app) as hostport, httpx.AsyncClient(base_url=f"http://{hostport}") as http:
                url, client = await _set_up_call(http, hostport, name)
                assert urlsplit(url).netloc == hostport
                report = await simulate_call(url, provider=client, script=short_script(), api=api, max_duration_s=25)
                metrics = await _wait_for_server(app)
        return report, client, api, metrics

    report, client, api, metrics = run(scenario(), timeout=40)
    text = report.render_text()
    assert report.completed, text
    assert report.errors == [] and report.protocol_violations == [] and report.warnings == [], text
    assert (report.provider, report.call_id) == (name, client.call_id)

    # The greeting was interrupted (clear), the repeat heard about a second after the caller stopped.
    assert report.clears_received >= 1 and len(report.barge_ins) == 1, text
    assert 0 < (report.barge_ins[0].latency_ms or 0) < 1000, text
    [turn] = report.turns
    assert 300 <= (turn.response_latency_ms or 0) <= 2500, text
    assert report.dtmf_sent == 1 and report.audio_played_s > 1.0, text
    # Every mark came back: played, or flushed by the clear.
    assert report.marks_sent_by_server >= 3 and report.marks_echoed == report.marks_sent_by_server, text

    # The server understood every message, and hung up over REST where it can.
    assert metrics.calls == 1 and metrics.protocol_errors == 0 and metrics.bot_errors == 0
    hangups = api.hangups(client.call_id)
    if client.hangup_route is not None:
        assert report.hangup == "rest", text
        [request] = hangups
        assert request.method == client.hangup_route.method and request.provider == name
        assert request.headers["authorization"].startswith("Basic " if name == "plivo" else "Bearer ")
        assert metrics.hangups == {"done": 1}
    else:
        assert report.hangup == "socket_closed" and report.close_code == 1000, text
        assert hangups == [] and metrics.hangups == {"skipped": 1}
