"""Vonage Voice API WebSocket serializer: the mixed binary/text fixture trace, L16 at 8/16/24 kHz in
exact 20 ms frames, DTMF, notify/clear acknowledgements, the JWT-signed REST hang-up, and
robustness to hostile input."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from phonewire.audio import Packetizer, dominant_frequency, tone
from phonewire.exceptions import ConfigurationError, LocalProtocolError, RemoteProtocolError
from phonewire.frames import (
    InputAudioRawFrame,
    InputDTMFFrame,
    InputTransportMessageFrame,
    KeypadEntry,
    OutputDTMFFrame,
)
from phonewire.serializers.base import ClearAcknowledged, HangupOutcome, MediaFormat, PlaybackMarkReached, StreamStarted
from phonewire.serializers.vonage import VonageFrameSerializer, parse_vonage_connected

FIXTURE = Path(__file__).parent.parent / "fixtures" / "vonage.jsonl"
RECORDS = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
CONNECTED = RECORDS[0]
CALL_UUID = CONNECTED["call_uuid"]
APP_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE_KEY_PEM = _KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()


def _wire(record: dict[str, Any]) -> str | bytes:
    """A fixture line as the WebSocket message it stands for (the ``_ws_frame`` convention)."""
    if "_ws_frame" in record:
        return base64.b64decode(record["payload_b64"])
    return json.dumps(record, separators=(",", ":"))


WIRE = [_wire(r) for r in RECORDS]


def _connected(rate: int = 16000, **headers: Any) -> str:
    return json.dumps({"event": "websocket:connected", "content-type": f"audio/l16;rate={rate}", **headers})


def _started(rate: int = 16000, **kwargs: Any) -> VonageFrameSerializer:
    serializer = VonageFrameSerializer(**kwargs)
    serializer.deserialize(_connected(rate))
    return serializer


def _b64url_json(segment: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


# --- the fixture trace -----------------------------------------------------------------


def test_every_fixture_message_parses_into_the_expected_frames_and_events():
    serializer = VonageFrameSerializer()
    kinds = [[type(item).__name__ for item in serializer.deserialize(message)] for message in WIRE]
    assert kinds == [
        ["StreamStarted"],
        *[["InputAudioRawFrame"]] * 10,
        ["InputDTMFFrame"],
        *[["InputAudioRawFrame"]] * 5,
        ["PlaybackMarkReached"],
        ["ClearAcknowledged"],
    ]
    assert serializer.irregular_frames == 0


def test_connected_headers_become_custom_parameters_numbers_and_the_call_id():
    info = parse_vonage_connected(CONNECTED)
    assert (info.provider, info.call_id, info.stream_id) == ("vonage", CALL_UUID, None)
    assert info.media_format == MediaFormat("l16", 16000, 1)
    assert (info.from_number, info.to_number) == ("447700900123", "447700900000")
    assert info.custom_parameters == {
        "call_uuid": CALL_UUID,
        "language": "en-GB",
        "callerID": "447700900123",
        "to": "447700900000",
    }


def test_fixture_audio_decodes_to_the_440_hz_tone_in_20_ms_frames():
    serializer = VonageFrameSerializer()
    frames = [f for m in WIRE for f in serializer.deserialize(m) if isinstance(f, InputAudioRawFrame)]
    assert {(len(f.audio), f.sample_rate) for f in frames} == {(640, 16000)}
    assert dominant_frequency(b"".join(f.audio for f in frames), 16000) == pytest.approx(440, abs=2)


def test_fixture_dtmf_and_acknowledgements_carry_their_values():
    serializer = VonageFrameSerializer()
    events = [e for m in WIRE for e in serializer.deserialize(m)]
    dtmf = next(e for e in events if isinstance(e, InputDTMFFrame))
    assert (dtmf.button, dtmf.duration_ms) == (KeypadEntry.FIVE, 260)
    assert events[-2:] == [PlaybackMarkReached("utterance-1"), ClearAcknowledged()]


# --- audio -----------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "frame_bytes"), [(8000, 320), (16000, 640), (24000, 960)])
def test_l16_round_trips_bit_exact_in_exact_20_ms_frames_at_each_rate(rate, frame_bytes):
    serializer = _started(rate)
    assert serializer.input_format == serializer.output_format == MediaFormat("l16", rate, 1)
    policy = serializer.packet_policy
    assert (policy.packet_bytes, policy.exact) == (frame_bytes, True)
    pcm = tone(440, 0.2, rate)
    packets = [pcm[i : i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]
    sent = [m for p in packets for m in serializer.encode_audio(p)]
    assert all(isinstance(m, bytes) and len(m) == frame_bytes for m in sent)
    received = b"".join(f.audio for m in sent for f in serializer.deserialize(m))
    assert received == pcm
    assert dominant_frequency(received, rate) == pytest.approx(440, abs=2)


def test_the_connected_content_type_wins_over_the_constructor_rate():
    serializer = VonageFrameSerializer(sample_rate=16000)
    serializer.deserialize(_connected(8000))
    assert serializer.input_format.sample_rate == 8000
    assert serializer.packet_policy.packet_bytes == 320


def test_the_pipecat_constructor_with_params_only_still_works():
    serializer = VonageFrameSerializer(VonageFrameSerializer.InputParams(vonage_sample_rate=8000))
    assert serializer.output_format == MediaFormat("l16", 8000, 1)
    with pytest.raises(ConfigurationError):
        VonageFrameSerializer(VonageFrameSerializer.InputParams(vonage_sample_rate=44100))


def test_inbound_frames_of_the_wrong_size_are_decoded_and_counted_not_lost():
    serializer = _started()
    [frame] = serializer.deserialize(bytes(960))  # 30 ms at 16 kHz
    assert len(frame.audio) == 960 and serializer.irregular_frames == 1
    assert serializer.deserialize(b"") == []


def test_odd_length_binary_frames_are_protocol_errors():
    with pytest.raises(RemoteProtocolError, match="odd-length"):
        _started().deserialize(bytes(641))


def test_outbound_frames_must_be_exactly_20_ms():
    serializer = _started()
    with pytest.raises(LocalProtocolError):
        serializer.encode_audio(bytes(600))
    packetizer = Packetizer(serializer.packet_policy.packet_bytes, exact=True)
    packets = [*packetizer.push(tone(440, 0.115, 16000)), packetizer.flush()]
    assert [len(m) for p in packets if p for m in serializer.encode_audio(p)] == [640] * 6


@pytest.mark.parametrize("content_type", ["audio/l16;rate=44100", "audio/pcmu;rate=8000", 16000])
def test_unsupported_content_types_are_protocol_errors(content_type):
    with pytest.raises(RemoteProtocolError):
        VonageFrameSerializer().deserialize(json.dumps({"event": "websocket:connected", "content-type": content_type}))


# --- DTMF, notify, clear ---------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        {"event": "websocket:dtmf", "digit": "9", "duration": 100},
        {"event": "websocket:dtmf", "dtmf": {"digit": "9", "duration": 100}},
    ],
)
def test_dtmf_reads_the_top_level_digit_with_the_nested_fallback(message):
    [frame] = _started().deserialize(json.dumps(message))
    assert frame.button is KeypadEntry.NINE


# Digits are strings (protocols.md 5.3); a number is refused like any other non-string identifier.
@pytest.mark.parametrize("digit", ["", "12", "z", None, 12, 9, True])
def test_invalid_dtmf_digits_are_protocol_errors(digit):
    with pytest.raises(RemoteProtocolError):
        _started().deserialize(json.dumps({"event": "websocket:dtmf", "digit": digit}))


def test_a_mark_travels_as_notify_and_its_echo_is_playback_reached():
    serializer = _started()
    [request] = serializer.encode_mark("utterance-7")
    assert json.loads(request) == {"action": "notify", "payload": {"mark": "utterance-7"}}
    echo = {"event": "websocket:notify", "payload": {"mark": "utterance-7"}}
    assert serializer.deserialize(json.dumps(echo)) == [PlaybackMarkReached("utterance-7")]
    assert VonageFrameSerializer.supports_playback_acks


def test_a_notify_the_bot_sent_itself_comes_back_as_a_transport_message():
    echo = {"event": "websocket:notify", "payload": {"step": 3}}
    [frame] = _started().deserialize(json.dumps(echo))
    assert isinstance(frame, InputTransportMessageFrame) and frame.message == echo


def test_clear_is_acknowledged_by_websocket_cleared():
    serializer = _started()
    assert serializer.encode_clear() == ['{"action":"clear"}']
    assert serializer.deserialize('{"event":"websocket:cleared"}') == [ClearAcknowledged()]


def test_vonage_has_no_outbound_dtmf_over_the_websocket():
    serializer = _started()
    assert not serializer.supports_dtmf_out
    with pytest.raises(LocalProtocolError):
        serializer.serialize(OutputDTMFFrame(buttons="1"))


# --- hang-up ---------------------------------------------------------------------------


def _hangup_ready(**params: Any) -> VonageFrameSerializer:
    return VonageFrameSerializer(
        VonageFrameSerializer.InputParams(**params),
        call_uuid=CALL_UUID,
        application_id=APP_ID,
        private_key=PRIVATE_KEY_PEM,
    )


def test_hang_up_is_a_put_with_an_rs256_application_jwt():
    request = _hangup_ready().hangup_request()
    assert request is not None
    assert (request.method, request.url) == ("PUT", f"https://api.nexmo.com/v1/calls/{CALL_UUID}")
    assert request.json == {"action": "hangup"} and request.form is None
    scheme, token = request.headers["Authorization"].split(" ")
    assert scheme == "Bearer"
    header, claims, signature = token.split(".")
    assert _b64url_json(header)["alg"] == "RS256"
    assert _b64url_json(claims)["application_id"] == APP_ID
    _KEY.public_key().verify(  # raises InvalidSignature if the JWT was not signed by our key
        base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
        f"{header}.{claims}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_base_url_redirects_hang_up_to_a_fake_api():
    request = _hangup_ready(base_url="http://127.0.0.1:9000/").hangup_request()
    assert request is not None and request.url == f"http://127.0.0.1:9000/v1/calls/{CALL_UUID}"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (204, HangupOutcome.DONE),
        (200, HangupOutcome.DONE),
        (404, HangupOutcome.ALREADY_ENDED),
        (429, HangupOutcome.RETRY),
        (503, HangupOutcome.RETRY),
        (401, HangupOutcome.FAILED),
    ],
)
def test_hang_up_responses_are_interpreted(status, outcome):
    request = _hangup_ready().hangup_request()
    assert request is not None and request.interpret(status, b"") is outcome


def test_hang_up_is_skipped_with_a_reason_when_off_or_without_credentials():
    assert _hangup_ready(auto_hang_up=False).hangup_request() is None
    assert _hangup_ready(auto_hang_up=False).hangup_skip_reason == "auto_hang_up is off"
    bare = VonageFrameSerializer()
    assert bare.hangup_request() is None
    assert bare.hangup_skip_reason == "missing call_uuid, application_id, private_key"


def test_the_call_uuid_header_of_connected_enables_hang_up():
    serializer = VonageFrameSerializer(application_id=APP_ID, private_key=PRIVATE_KEY_PEM)
    serializer.deserialize(WIRE[0])
    assert serializer.call_uuid == CALL_UUID
    request = serializer.hangup_request()
    assert request is not None and request.url.endswith(CALL_UUID)


def test_a_call_uuid_that_could_rewrite_the_url_is_never_used():
    serializer = VonageFrameSerializer(application_id=APP_ID, private_key=PRIVATE_KEY_PEM)
    serializer.deserialize(_connected(call_uuid="../../accounts/x"))
    assert serializer.call_uuid is None and serializer.hangup_request() is None
    forced = VonageFrameSerializer(call_uuid="a/b", application_id=APP_ID, private_key=PRIVATE_KEY_PEM)
    assert forced.hangup_request() is None and "UUID" in (forced.hangup_skip_reason or "")


def test_a_bad_private_key_is_a_configuration_error_at_hang_up():
    serializer = VonageFrameSerializer(call_uuid=CALL_UUID, application_id=APP_ID, private_key="not a key")
    with pytest.raises(ConfigurationError):
        serializer.hangup_request()


def test_the_private_key_never_appears_in_repr():
    text = repr(_hangup_ready())
    assert "PRIVATE" not in text and PRIVATE_KEY_PEM[40:80] not in text
    assert CALL_UUID in text


# --- protocol violations ---------------------------------------------------------------


def test_unknown_events_bad_json_and_a_second_connected_are_refused():
    serializer = _started()
    for message in ['{"event":"websocket:party"}', "{not json", "[1,2]", _connected()]:
        with pytest.raises(RemoteProtocolError):
            serializer.deserialize(message)


def test_connected_does_not_modify_the_message_it_was_given():
    message = copy.deepcopy(CONNECTED)
    info = parse_vonage_connected(message)
    assert message == CONNECTED and info.start_message is message
    assert isinstance(StreamStarted(info).info.custom_parameters, dict)
