"""Plivo audio streams serializer: the wire protocol as documented, formats, limits and fuzzing.

tests/fixtures/plivo.jsonl is a synthetic trace in Plivo's documented shapes for a stream with
``contentType="audio/x-mulaw;rate=8000"`` (start, 10 media, dtmf, 5 media, playedStream, clearedAudio;
no connected and no stop: Plivo just closes the socket). Its audio is a phase-continuous 440 Hz
tone made with ``phonewire.audio.analysis.tone`` and encoded with ``pcm_to_ulaw``, 160 bytes
(20 ms) per media message; ``sequenceNumber`` and ``chunk`` are numbers, ``timestamp`` a string.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonewire.audio.analysis import dominant_frequency, tone
from phonewire.audio.g711 import ulaw_to_pcm
from phonewire.exceptions import ConfigurationError, LocalProtocolError, RemoteProtocolError
from phonewire.frames import InputAudioRawFrame, InputDTMFFrame, KeypadEntry
from phonewire.serializers.base import (
    ClearAcknowledged,
    HangupOutcome,
    MediaFormat,
    PlaybackMarkReached,
    StreamStarted,
    StreamStopped,
)
from phonewire.serializers.plivo import (
    PlivoFrameSerializer,
    parse_extra_headers,
    parse_plivo_start,
    plivo_content_type,
)
from phonewire.telephony.basic_auth import basic_auth_header

FIXTURE = Path(__file__).parent.parent / "fixtures" / "plivo.jsonl"
LINES = FIXTURE.read_text().splitlines()
MESSAGES = [json.loads(line) for line in LINES]
START = MESSAGES[0]
STREAM_ID = START["start"]["streamId"]
CALL_ID = START["start"]["callId"]


def dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def serializer(**kwargs: Any) -> PlivoFrameSerializer:
    return PlivoFrameSerializer(STREAM_ID, **kwargs)


def start_message(encoding: Any = "audio/x-mulaw", rate: Any = 8000, **top: Any) -> str:
    msg = json.loads(json.dumps(START))
    msg["start"]["mediaFormat"] = {"encoding": encoding, "sampleRate": rate}
    msg.update(top)
    return dump(msg)


def media(payload: bytes, seq: Any = 5, chunk: Any = 4, track: str = "inbound", stream_id: str = STREAM_ID) -> str:
    body = {"track": track, "timestamp": "1772446500060", "chunk": chunk, "payload": b64(payload)}
    return dump({"event": "media", "sequenceNumber": seq, "streamId": stream_id, "media": body})


def audio_of(frames: list[Any]) -> list[InputAudioRawFrame]:
    return [f for f in frames if isinstance(f, InputAudioRawFrame)]


# --- the fixture trace ----------------------------------------------------------------------


def test_the_fixture_trace_parses_into_start_audio_dtmf_and_both_acknowledgements() -> None:
    ser = serializer()
    flat = [item for line in LINES for item in ser.deserialize(line)]
    assert isinstance(flat[0], StreamStarted)
    audio = audio_of(flat)
    assert len(audio) == 15 and all(f.sample_rate == 8000 for f in audio)
    payloads = [base64.b64decode(m["media"]["payload"]) for m in MESSAGES if m["event"] == "media"]
    assert b"".join(f.audio for f in audio) == ulaw_to_pcm(b"".join(payloads))
    assert dominant_frequency(b"".join(f.audio for f in audio), 8000) == pytest.approx(440, abs=3)
    [digit] = [f for f in flat if isinstance(f, InputDTMFFrame)]
    assert digit.button == KeypadEntry.FIVE and digit.metadata == {"timestamp": "1772446500205"}
    assert flat[-2:] == [PlaybackMarkReached("utterance-1"), ClearAcknowledged()]
    assert ser.last_sequence_number == 19


def test_the_start_message_becomes_call_info_with_extra_headers_as_custom_parameters() -> None:
    info = parse_plivo_start(START)
    assert info.provider == "plivo"
    assert (info.call_id, info.stream_id) == (CALL_ID, STREAM_ID)
    assert info.account_id == "MAPWFIXTURE000000001"
    assert info.media_format == MediaFormat("mulaw", 8000)
    assert info.custom_parameters == {"userId": "42", "sessionId": "pw-fixture"}
    assert info.start_message is START


def test_caller_numbers_come_from_extra_headers_when_the_xml_passes_them() -> None:
    info = parse_plivo_start(json.loads(start_message(extra_headers="from_number=15550001,to_number=15550002")))
    assert (info.from_number, info.to_number) == ("15550001", "15550002")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("userId=12345;sessionId=abc-xyz", {"userId": "12345", "sessionId": "abc-xyz"}),
        ("test1=12,test2=123", {"test1": "12", "test2": "123"}),
        ('{"a":"1","b":2,"c":{"d":true}}', {"a": "1", "b": "2", "c": '{"d":true}'}),
        ({"a": "x"}, {"a": "x"}),
        (" a = 1 ; ; junk ; =v ; b=2=3 ", {"a": "1", "b": "2=3"}),
        ("{not json", {}),
        ("", {}),
        (None, {}),
        (42, {}),
        (["a=1"], {}),
    ],
)
def test_extra_headers_are_parsed_defensively_in_every_documented_format(raw: Any, expected: dict[str, str]) -> None:
    assert parse_extra_headers(raw) == expected


@pytest.mark.parametrize(
    ("encoding", "rate", "expected"),
    [
        ("audio/x-mulaw", 8000, MediaFormat("mulaw", 8000)),
        ("audio/x-l16", 8000, MediaFormat("l16", 8000)),
        ("audio/x-l16", 16000, MediaFormat("l16", 16000)),
        ("audio/x-l16", "16000", MediaFormat("l16", 16000)),
        ("audio/x-l16;rate=16000", None, MediaFormat("l16", 16000)),
    ],
)
def test_the_stream_format_is_read_from_the_calls_own_start(encoding: str, rate: Any, expected: MediaFormat) -> None:
    assert parse_plivo_start(json.loads(start_message(encoding, rate))).media_format == expected


@pytest.mark.parametrize(("encoding", "rate"), [("audio/x-mulaw", 16000), ("audio/x-l16", 24000), ("audio/ogg", 8000)])
def test_an_unsupported_stream_format_is_a_remote_protocol_error(encoding: str, rate: int) -> None:
    with pytest.raises(RemoteProtocolError, match="unsupported"):
        serializer().deserialize(start_message(encoding, rate))


# --- audio formats --------------------------------------------------------------------------


def play_payload(message: str) -> tuple[dict[str, Any], bytes]:
    doc = json.loads(message)
    return doc, base64.b64decode(doc["media"]["payload"])


def test_mulaw_play_audio_is_labelled_with_the_streams_content_type_and_an_integer_rate() -> None:
    ser = serializer()
    pcm = tone(440, 0.2, 8000)
    [message] = ser.encode_audio(pcm)
    doc, payload = play_payload(message)
    assert doc["event"] == "playAudio"
    assert doc["media"]["contentType"] == "audio/x-mulaw"
    assert doc["media"]["sampleRate"] == 8000 and isinstance(doc["media"]["sampleRate"], int)
    assert "streamId" not in doc  # not in Plivo's playAudio schema
    [frame] = ser.deserialize(media(payload))
    assert dominant_frequency(frame.audio, 8000) == pytest.approx(440, abs=2)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_l16_round_trips_bit_exactly_little_endian_at_8_and_16_khz(rate: int) -> None:
    ser = serializer(media_format=MediaFormat("l16", rate))
    pcm = tone(440, 0.2, rate)
    [message] = ser.encode_audio(pcm)
    doc, payload = play_payload(message)
    assert doc["media"] == {"contentType": "audio/x-l16", "sampleRate": rate, "payload": b64(pcm)}
    assert payload == pcm  # little-endian on the wire, like our PCM
    [frame] = ser.deserialize(media(payload))
    assert frame.audio == pcm and frame.sample_rate == rate
    assert dominant_frequency(frame.audio, rate) == pytest.approx(440, abs=2)


def test_a_start_in_l16_makes_outbound_audio_match_the_stream() -> None:
    ser = serializer()
    ser.deserialize(start_message("audio/x-l16", 16000))
    assert ser.input_format == ser.output_format == MediaFormat("l16", 16000)
    doc, _ = play_payload(ser.encode_audio(bytes(640))[0])
    assert (doc["media"]["contentType"], doc["media"]["sampleRate"]) == ("audio/x-l16", 16000)


def test_the_content_type_param_mirrors_the_stream_xml_attribute() -> None:
    params = PlivoFrameSerializer.InputParams(content_type="audio/x-l16;rate=16000")
    ser = serializer(params=params)
    assert ser.output_format == MediaFormat("l16", 16000)
    assert plivo_content_type(ser.output_format) == "audio/x-l16;rate=16000"
    pipecat_style = PlivoFrameSerializer.InputParams(content_type="audio/x-l16", plivo_sample_rate=8000)
    assert serializer(params=pipecat_style).output_format == MediaFormat("l16", 8000)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"params": PlivoFrameSerializer.InputParams(plivo_sample_rate=16000)},
        {"params": PlivoFrameSerializer.InputParams(content_type="audio/x-mulaw;rate=16000")},
        {"params": PlivoFrameSerializer.InputParams(content_type="audio/wav")},
        {"media_format": MediaFormat("alaw", 8000)},
        {"media_format": MediaFormat("l16", 16000, 2)},
    ],
)
def test_formats_plivo_cannot_stream_fail_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        serializer(**kwargs)


def test_an_l16_payload_with_half_a_sample_is_rejected() -> None:
    with pytest.raises(RemoteProtocolError, match="odd"):
        serializer(media_format=MediaFormat("l16", 8000)).deserialize(media(b"\x01\x02\x03"))


def test_packets_are_20_ms_of_whole_samples_well_under_plivos_message_limits() -> None:
    mulaw = serializer().packet_policy
    assert (mulaw.packet_bytes, mulaw.multiple_of) == (160, 1)
    l16 = serializer(media_format=MediaFormat("l16", 16000)).packet_policy
    assert (l16.packet_bytes, l16.multiple_of) == (640, 2)
    assert len(serializer().encode_audio(bytes(320))[0]) < 16 * 1024


def test_a_packet_larger_than_16_kb_of_base64_is_split_into_several_play_audio_messages() -> None:
    ser = serializer(media_format=MediaFormat("l16", 16000))
    pcm = tone(440, 1.0, 16000)  # 32000 bytes -> 42668 base64 characters
    messages = ser.encode_audio(pcm)
    assert len(messages) == 3
    decoded = [play_payload(m)[1] for m in messages]
    assert all(len(json.loads(m)["media"]["payload"]) <= 16 * 1024 for m in messages)
    assert all(len(p) % 2 == 0 for p in decoded)
    assert b"".join(decoded) == pcm


def test_empty_audio_sends_nothing() -> None:
    assert serializer().encode_audio(b"") == []


def test_pre_encoded_audio_is_wrapped_as_is() -> None:
    doc, payload = play_payload(serializer().encode_raw_audio(b"\xff\x00")[0])
    assert payload == b"\xff\x00" and doc["media"]["contentType"] == "audio/x-mulaw"


# --- acknowledgements, clear, DTMF out ------------------------------------------------------


def test_a_mark_is_sent_as_a_checkpoint_and_played_stream_comes_back_as_mark_reached() -> None:
    ser = serializer()
    [checkpoint] = ser.encode_mark("greeting-complete")
    assert json.loads(checkpoint) == {"event": "checkpoint", "streamId": STREAM_ID, "name": "greeting-complete"}
    echo = {"event": "playedStream", "sequenceNumber": 75, "streamId": STREAM_ID, "name": "greeting-complete"}
    assert ser.deserialize(dump(echo)) == [PlaybackMarkReached("greeting-complete")]


def test_clear_is_clear_audio_and_cleared_audio_acknowledges_it() -> None:
    ser = serializer()
    assert json.loads(ser.encode_clear()[0]) == {"event": "clearAudio", "streamId": STREAM_ID}
    ack = {"event": "clearedAudio", "sequenceNumber": 80, "streamId": STREAM_ID}
    assert ser.deserialize(dump(ack)) == [ClearAcknowledged()]


def test_outbound_dtmf_is_a_send_dtmf_message() -> None:
    assert PlivoFrameSerializer.supports_dtmf_out is True
    assert serializer().encode_dtmf("1234#") == ['{"event":"sendDTMF","dtmf":"1234#"}']
    assert serializer().encode_dtmf("*ab") == ['{"event":"sendDTMF","dtmf":"*AB"}']


@pytest.mark.parametrize("digits", ["", "12x", "1 2", "E"])
def test_digits_plivo_cannot_play_are_refused_locally(digits: str) -> None:
    with pytest.raises(LocalProtocolError):
        serializer().encode_dtmf(digits)


def test_transport_messages_are_limited_to_plivos_own_events() -> None:
    ser = serializer()
    [checkpoint] = ser.encode_message({"event": "checkpoint", "name": "n"})
    assert json.loads(checkpoint) == {"event": "checkpoint", "name": "n", "streamId": STREAM_ID}
    with pytest.raises(LocalProtocolError):
        ser.encode_message({"event": "custom"})
    with pytest.raises(LocalProtocolError, match="contentType"):
        ser.encode_message({"event": "playAudio", "media": {"contentType": "audio/x-l16", "payload": ""}})
    with pytest.raises(LocalProtocolError, match="64 KB"):
        ser.encode_message({"event": "sendDTMF", "dtmf": "1" * 70_000})


# --- inbound details and quirks -------------------------------------------------------------


@pytest.mark.parametrize(("digit", "button"), [("0", "0"), ("#", "#"), ("A", "A"), ("d", "D")])
def test_dtmf_digits_including_a_to_d_are_recognised(digit: str, button: str) -> None:
    msg = {"event": "dtmf", "sequenceNumber": 50, "streamId": STREAM_ID, "dtmf": {"track": "inbound", "digit": digit}}
    [frame] = serializer().deserialize(dump(msg))
    assert isinstance(frame, InputDTMFFrame) and frame.button == KeypadEntry(button)


@pytest.mark.parametrize("value", [42, "42", 42.0])
def test_numeric_counters_are_accepted_as_numbers_or_digit_strings(value: Any) -> None:
    assert len(serializer().deserialize(media(b"\xff" * 160, seq=value, chunk=value))) == 1


@pytest.mark.parametrize("value", ["abc", True, 4.5, -1, [1], {"n": 1}])
def test_non_numeric_counters_are_remote_protocol_errors(value: Any) -> None:
    with pytest.raises(RemoteProtocolError):
        serializer().deserialize(media(b"\xff" * 160, chunk=value))
    with pytest.raises(RemoteProtocolError):
        serializer().deserialize(media(b"\xff" * 160, seq=value))


def test_the_first_message_is_start_and_no_connected_event_exists() -> None:
    assert MESSAGES[0]["event"] == "start"
    with pytest.raises(RemoteProtocolError, match="unknown event"):
        serializer().deserialize('{"event":"connected"}')


def test_a_stop_event_is_accepted_although_plivo_does_not_document_one() -> None:
    assert serializer().deserialize(dump({"event": "stop", "streamId": STREAM_ID})) == [StreamStopped("stop")]


def test_a_second_start_and_messages_for_another_stream_are_refused() -> None:
    ser = serializer()
    ser.deserialize(LINES[0])
    with pytest.raises(RemoteProtocolError, match="second start"):
        ser.deserialize(LINES[0])
    with pytest.raises(RemoteProtocolError, match="another streamId"):
        ser.deserialize(media(b"\xff", stream_id="other"))
    with pytest.raises(RemoteProtocolError, match="another streamId"):
        PlivoFrameSerializer("other").deserialize(LINES[0])


def test_outbound_track_media_is_not_mistaken_for_the_caller() -> None:
    assert serializer().deserialize(media(b"\xff" * 160, track="outbound")) == []


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x00\x01", "binary"),
        ("{", "invalid JSON"),
        ('"start"', "not an object"),
        ('{"event":"media","media":{"payload":"!!"}}', "base64"),
        ('{"event":"playedStream"}', "name"),
        ('{"event":"start","start":{}}', "streamId"),
    ],
)
def test_bad_messages_raise_remote_protocol_error_with_a_short_message(data: Any, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match) as info:
        serializer().deserialize(data)
    assert len(str(info.value)) < 120


# --- hang-up --------------------------------------------------------------------------------


def test_the_hang_up_request_is_a_basic_authenticated_delete_of_the_call() -> None:
    ser = serializer(call_id=CALL_ID, auth_id="MA0123456789ABCDEFGH", auth_token="tok-secret")
    request = ser.hangup_request()
    assert request is not None
    assert request.method == "DELETE"
    assert request.url == f"https://api.plivo.com/v1/Account/MA0123456789ABCDEFGH/Call/{CALL_ID}/"
    assert request.headers == {"Authorization": basic_auth_header("MA0123456789ABCDEFGH", "tok-secret")}
    assert request.form is None and request.json is None
    assert "tok-secret" not in repr(ser) and "tok-secret" not in repr(request)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (204, HangupOutcome.DONE),
        (404, HangupOutcome.ALREADY_ENDED),
        (401, HangupOutcome.FAILED),
        (429, HangupOutcome.RETRY),
        (500, HangupOutcome.RETRY),
    ],
)
def test_hang_up_responses_are_interpreted_as_plivo_documents_them(status: int, outcome: HangupOutcome) -> None:
    request = serializer(call_id=CALL_ID, auth_id="a", auth_token="t").hangup_request()
    assert request is not None and request.interpret(status, b"") is outcome


def test_the_call_id_is_learnt_from_start_and_only_a_uuid_reaches_the_url() -> None:
    ser = serializer(auth_id="MA1", auth_token="t")
    assert ser.hangup_skip_reason == "missing call_id"
    ser.deserialize(start_message())
    request = ser.hangup_request()
    assert request is not None and request.url.endswith(f"/Call/{CALL_ID}/")
    for bad in ("../x?y", f"{CALL_ID}/Stream", "..", f"{CALL_ID}\n"):
        evil = PlivoFrameSerializer(STREAM_ID, call_id=bad, auth_id="MA1", auth_token="t")
        assert evil.hangup_request() is None
        assert (evil.hangup_skip_reason or "").startswith("invalid call_id") and bad not in evil.hangup_skip_reason


def test_hang_up_is_skipped_with_a_reason_when_off_or_without_credentials() -> None:
    params = PlivoFrameSerializer.InputParams(auto_hang_up=False, base_url="http://127.0.0.1:9")
    off = serializer(call_id=CALL_ID, auth_id="a", auth_token="t", params=params)
    assert off.hangup_request() is None and off.hangup_skip_reason == "auto_hang_up is off"
    assert serializer().hangup_skip_reason == "missing call_id, auth_id, auth_token"


def test_a_base_url_override_points_hang_up_at_a_local_fake() -> None:
    params = PlivoFrameSerializer.InputParams(base_url="http://127.0.0.1:9/")
    request = serializer(call_id=CALL_ID, auth_id="a", auth_token="t", params=params).hangup_request()
    assert request is not None and request.url == f"http://127.0.0.1:9/v1/Account/a/Call/{CALL_ID}/"


def test_the_users_params_object_is_never_modified() -> None:
    params = PlivoFrameSerializer.InputParams(content_type="audio/x-mulaw;rate=8000")
    before = repr(params)
    ser = serializer(params=params)
    ser.deserialize(start_message("audio/x-l16", 16000))
    assert repr(params) == before and ser.output_format == MediaFormat("l16", 16000)


# --- fuzzing (the shared properties are in test_serializer_contract.py) ---------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@given(st.one_of(JSON, st.text(alphabet='=;,{}":ab 1', max_size=40)))
@settings(max_examples=200, deadline=None)
def test_fuzz_extra_headers_never_raise_and_always_give_string_pairs(value: Any) -> None:
    parsed = parse_extra_headers(value)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.items())
