"""TwilioClient: the messages Twilio sends, byte-for-byte in shape, and how it judges the bot's."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonewire.audio.g711 import pcm_to_ulaw, ulaw_to_pcm
from phonewire.exceptions import ConfigurationError
from phonewire.testing.providers import (
    Clear,
    Mark,
    PlayAudio,
    ProtocolViolation,
    TwilioClient,
    create_provider,
)

STREAM = "MZ00000000000000000000000000000001"


def client(**kwargs: Any) -> TwilioClient:
    return TwilioClient(account_sid="AC1", call_sid="CA1", stream_sid=STREAM, **kwargs)


def load(message: str | bytes) -> dict[str, Any]:
    assert isinstance(message, str)
    return json.loads(message)


def test_the_opening_messages_are_connected_then_start_with_the_call_identity() -> None:
    connected, start = map(load, client(custom_parameters={"lang": "en", "n": 3}).opening_messages())
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start == {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": "AC1",
            "streamSid": STREAM,
            "callSid": "CA1",
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"lang": "en", "n": "3"},
        },
        "streamSid": STREAM,
    }


def test_counters_are_strings_sequence_counts_every_message_and_chunks_count_media() -> None:
    twilio = client()
    twilio.opening_messages()
    first = load(twilio.media_message(b"\xff" * 160))
    dtmf = load(twilio.dtmf_message("7"))
    second = load(twilio.media_message(b"\xff" * 160))
    echo = load(twilio.mark_echo("m1"))
    stop = load(twilio.stop_message() or "")
    assert [m["sequenceNumber"] for m in (first, dtmf, second, echo, stop)] == ["2", "3", "4", "5", "6"]
    assert first["media"] == {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": "/" * 212 + "/w=="}
    assert (second["media"]["chunk"], second["media"]["timestamp"]) == ("2", "20")
    assert dtmf == {"event": "dtmf", "streamSid": STREAM, "sequenceNumber": "3",
                    "dtmf": {"track": "inbound_track", "digit": "7"}}  # fmt: skip
    assert echo == {"event": "mark", "sequenceNumber": "5", "streamSid": STREAM, "mark": {"name": "m1"}}
    assert stop == {"event": "stop", "sequenceNumber": "6", "stop": {"accountSid": "AC1", "callSid": "CA1"},
                    "streamSid": STREAM}  # fmt: skip


def test_generated_ids_look_like_twilio_sids() -> None:
    twilio = TwilioClient()
    for sid, prefix in ((twilio.account_sid, "AC"), (twilio.call_sid, "CA"), (twilio.stream_sid, "MZ")):
        assert sid.startswith(prefix) and len(sid) == 34
        int(sid[2:], 16)
    assert TwilioClient().call_sid != twilio.call_sid


def test_bot_media_is_decoded_from_mulaw_to_pcm() -> None:
    pcm = ulaw_to_pcm(bytes(range(256)))
    payload = base64.b64encode(pcm_to_ulaw(pcm)).decode()
    message = json.dumps({"event": "media", "streamSid": STREAM, "media": {"payload": payload}})
    assert client().parse_server_message(message) == [PlayAudio(pcm)]


def test_marks_and_clears_become_commands() -> None:
    twilio = client()
    assert twilio.parse_server_message(json.dumps({"event": "mark", "streamSid": STREAM, "mark": {"name": "x"}})) == [
        Mark("x")
    ]
    assert twilio.parse_server_message(json.dumps({"event": "clear", "streamSid": STREAM})) == [Clear()]


@pytest.mark.parametrize(
    ("message", "code", "words"),
    [
        (b"\x00\x01", 31950, "binary"),
        ("{not json", 31924, "JSON"),
        ("[1, 2]", 31924, "object"),
        (json.dumps({"event": "dance", "streamSid": STREAM}), 31924, "unknown event"),
        (json.dumps({"event": "clear"}), 31924, "without streamSid"),
        (json.dumps({"event": "clear", "streamSid": "MZother"}), 31924, "another streamSid"),
        (json.dumps({"event": "media", "streamSid": STREAM, "media": {}}), 31924, "payload"),
        (json.dumps({"event": "media", "streamSid": STREAM, "media": {"payload": "@@"}}), 31924, "base64"),
        (json.dumps({"event": "mark", "streamSid": STREAM, "mark": {"name": 5}}), 31924, "mark.name"),
    ],
)
def test_messages_twilio_would_reject_are_reported_as_violations(message: str | bytes, code: int, words: str) -> None:
    [violation] = client().parse_server_message(message)
    assert isinstance(violation, ProtocolViolation)
    assert violation.code == code
    assert words in violation.reason


def test_a_wav_header_in_media_is_flagged_but_still_played_as_noise() -> None:
    payload = base64.b64encode(b"RIFF" + b"\xff" * 40).decode()
    commands = client().parse_server_message(
        json.dumps({"event": "media", "streamSid": STREAM, "media": {"payload": payload}})
    )
    assert isinstance(commands[0], ProtocolViolation) and "WAV header" in commands[0].reason
    assert isinstance(commands[1], PlayAudio)


@given(st.one_of(st.binary(max_size=64), st.text(max_size=64), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["event", "streamSid", "media", "mark", "payload", "name"]), children, max_size=4),
    max_leaves=8,
).map(json.dumps)))  # fmt: skip
def test_parsing_any_message_never_raises(message: str | bytes) -> None:
    commands = client().parse_server_message(message)
    assert all(isinstance(c, PlayAudio | Mark | Clear | ProtocolViolation) for c in commands)


def test_a_query_string_in_the_stream_url_draws_a_warning() -> None:
    assert client().url_warnings("wss://bot.example.com/media") == []
    [warning] = client().url_warnings("wss://bot.example.com/media?x=1")
    assert "query string" in warning


def test_the_upgrade_signer_hook_adds_handshake_headers() -> None:
    twilio = client(upgrade_signer=lambda url: {"X-Twilio-Signature": f"sig:{url}"})
    assert twilio.upgrade_headers("wss://h/m") == {"X-Twilio-Signature": "sig:wss://h/m"}
    assert client().upgrade_headers("wss://h/m") == {}


def test_providers_are_created_by_name_and_unknown_names_are_refused() -> None:
    assert isinstance(create_provider("Twilio"), TwilioClient)
    with pytest.raises(ConfigurationError, match="twilio"):
        create_provider("carrier-pigeon")
