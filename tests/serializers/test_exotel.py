"""Exotel AgentStream serializer: the fixture trace, PCM/μ-law audio at every rate, Exotel's chunk
rules, DTMF, marks, clear, stop reasons, the missing hang-up API, and robustness to hostile input."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from phonewire.audio import Packetizer, dominant_frequency, pcm_to_ulaw, tone, ulaw_to_pcm
from phonewire.exceptions import CodecError, ConfigurationError, LocalProtocolError, RemoteProtocolError
from phonewire.frames import InputAudioRawFrame, InputDTMFFrame, KeypadEntry, OutputDTMFFrame
from phonewire.serializers.base import MediaFormat, PlaybackMarkReached, StreamStopped
from phonewire.serializers.exotel import CHUNK_MAX, ExotelFrameSerializer, parse_exotel_start

FIXTURE = Path(__file__).parent.parent / "fixtures" / "exotel.jsonl"
LINES = FIXTURE.read_text().splitlines()
MESSAGES = [json.loads(line) for line in LINES]
START = MESSAGES[1]
SID = START["stream_sid"]


def _started(encoding: str = "audio/x-raw", rate: str = "8000", bits: str | None = "16") -> ExotelFrameSerializer:
    msg = copy.deepcopy(START)
    fmt: dict[str, Any] = {"encoding": encoding, "sample_rate": rate}
    if bits is not None:
        fmt["bit_rate"] = bits
    msg["start"]["media_format"] = fmt
    serializer = ExotelFrameSerializer(SID)
    serializer.deserialize(json.dumps(msg))
    return serializer


def _media(payload: bytes, **media: str) -> str:
    body = {"chunk": "1", "timestamp": "100", "payload": base64.b64encode(payload).decode(), **media}
    return json.dumps({"event": "media", "sequence_number": "2", "stream_sid": SID, "media": body})


def _payload(message: str) -> bytes:
    return base64.b64decode(json.loads(message)["media"]["payload"])


# --- the fixture trace -----------------------------------------------------------------


def test_every_fixture_message_parses_into_the_expected_frames_and_events():
    serializer = ExotelFrameSerializer(SID)
    kinds = [[type(item).__name__ for item in serializer.deserialize(line)] for line in LINES]
    assert kinds == [
        [],
        ["StreamStarted"],
        *[["InputAudioRawFrame"]] * 3,
        ["InputDTMFFrame"],
        *[["InputAudioRawFrame"]] * 2,
        ["PlaybackMarkReached"],
        ["StreamStopped"],
    ]


def test_start_reports_ids_numbers_custom_parameters_and_the_declared_format():
    info = parse_exotel_start(START)
    assert (info.provider, info.stream_id, info.call_id) == ("exotel", SID, START["start"]["call_sid"])
    assert info.account_id == START["start"]["account_sid"]
    assert (info.from_number, info.to_number) == ("+919812345678", "+918030123456")
    assert info.custom_parameters == {"lang": "hi-IN", "campaign": "renewals"}
    assert info.media_format == MediaFormat("l16", 8000, 1)


def test_fixture_media_decodes_to_the_440_hz_tone_at_the_wire_rate():
    serializer = ExotelFrameSerializer(SID)
    frames = [f for line in LINES for f in serializer.deserialize(line) if isinstance(f, InputAudioRawFrame)]
    assert {f.sample_rate for f in frames} == {8000}
    assert all(len(f.audio) == 1600 for f in frames)  # 100 ms of PCM16 at 8 kHz
    assert dominant_frequency(b"".join(f.audio for f in frames), 8000) == pytest.approx(440, abs=2)


def test_fixture_dtmf_mark_and_stop_carry_their_values():
    serializer = ExotelFrameSerializer(SID)
    events = [e for line in LINES for e in serializer.deserialize(line)]
    dtmf = next(e for e in events if isinstance(e, InputDTMFFrame))
    assert (dtmf.button, dtmf.duration_ms) == (KeypadEntry.SEVEN, 120)
    assert PlaybackMarkReached("utterance-1") in events
    assert events[-1] == StreamStopped("callended")


# --- audio -----------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_pcm_round_trips_bit_exact_and_keeps_the_tone_at_each_rate(rate):
    serializer = _started(rate=str(rate))
    assert serializer.input_format == serializer.output_format == MediaFormat("l16", rate, 1)
    pcm = tone(440, 0.2, rate)
    [message] = serializer.encode_audio(pcm)
    assert json.loads(message) == {
        "event": "media",
        "stream_sid": SID,
        "media": {"payload": base64.b64encode(pcm).decode()},
    }
    [frame] = serializer.deserialize(_media(_payload(message)))
    assert frame.audio == pcm and frame.sample_rate == rate
    assert dominant_frequency(frame.audio, rate) == pytest.approx(440, abs=2)


def test_beta_mulaw_streams_decode_and_encode_as_g711_at_8_khz():
    serializer = _started(encoding="audio/x-mulaw", bits="8")
    assert serializer.input_format == MediaFormat("mulaw", 8000, 1)
    pcm = tone(440, 0.2, 8000)
    [message] = serializer.encode_audio(pcm)
    assert _payload(message) == pcm_to_ulaw(pcm)
    [frame] = serializer.deserialize(_media(pcm_to_ulaw(pcm)))
    assert frame.audio == ulaw_to_pcm(pcm_to_ulaw(pcm))
    assert dominant_frequency(frame.audio, 8000) == pytest.approx(440, abs=2)


def test_the_start_message_format_wins_over_the_constructor_default():
    serializer = _started(rate="16000")
    assert serializer.input_format.sample_rate == 16000
    [frame] = serializer.deserialize(_media(bytes(320)))
    assert frame.sample_rate == 16000


def test_an_l16_content_type_with_a_rate_parameter_is_understood():
    info = parse_exotel_start({"start": {"stream_sid": SID, "media_format": {"encoding": "audio/L16;rate=16000"}}})
    assert info.media_format == MediaFormat("l16", 16000, 1)


@pytest.mark.parametrize(
    "media_format",
    [
        {"encoding": "audio/ogg", "sample_rate": "8000"},
        {"encoding": "audio/x-raw", "sample_rate": "44100"},
        {"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "8"},
        {"encoding": "audio/x-mulaw", "sample_rate": "16000"},
        {"encoding": "audio/x-raw", "sample_rate": "eight thousand"},
        "audio/x-raw",
    ],
)
def test_unsupported_media_formats_are_protocol_errors(media_format):
    msg = copy.deepcopy(START)
    msg["start"]["media_format"] = media_format
    with pytest.raises(RemoteProtocolError):
        ExotelFrameSerializer(SID).deserialize(json.dumps(msg))


def test_odd_length_pcm_is_a_codec_error_and_empty_media_is_nothing():
    serializer = _started()
    with pytest.raises(CodecError):
        serializer.deserialize(_media(b"\x01\x02\x03"))
    assert serializer.deserialize(_media(b"")) == []


def test_outbound_track_media_is_not_mistaken_for_the_caller():
    serializer = _started()
    assert serializer.deserialize(_media(bytes(320), track="outbound")) == []
    assert len(serializer.deserialize(_media(bytes(320), track="inbound"))) == 1


def test_constructor_rejects_formats_exotel_cannot_carry():
    with pytest.raises(ConfigurationError):
        ExotelFrameSerializer(SID, params=ExotelFrameSerializer.InputParams(exotel_sample_rate=44100))
    with pytest.raises(ConfigurationError):
        ExotelFrameSerializer(SID, media_format=MediaFormat("mulaw", 16000))
    assert ExotelFrameSerializer(SID, media_format=MediaFormat("l16", 24000)).output_format.sample_rate == 24000


# --- Exotel's chunk-size rules ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "packet_bytes"),
    [
        (MediaFormat("l16", 8000), 3200),  # 100 ms is only 1600 B: raised to the 3200 B minimum (200 ms)
        (MediaFormat("l16", 16000), 3200),  # 100 ms exactly
        (MediaFormat("l16", 24000), 4800),  # 100 ms, already a multiple of 320
        (MediaFormat("mulaw", 8000), 3200),  # 800 B -> the minimum
    ],
)
def test_packet_policy_follows_exotels_multiple_minimum_and_maximum(fmt, packet_bytes):
    policy = ExotelFrameSerializer(SID, media_format=fmt).packet_policy
    assert (policy.packet_bytes, policy.multiple_of, policy.exact) == (packet_bytes, 320, False)
    assert policy.packet_bytes % 320 == 0 and 3200 <= policy.packet_bytes <= CHUNK_MAX


def test_packetized_utterances_send_only_multiples_of_320_bytes():
    serializer = ExotelFrameSerializer(SID)
    policy = serializer.packet_policy
    packetizer = Packetizer(policy.packet_bytes, multiple_of=policy.multiple_of, pad_byte=serializer.silence_byte)
    packets = packetizer.push(tone(440, 1.07, 8000))
    tail = packetizer.flush()
    assert tail is not None
    sizes = [len(_payload(m)) for p in [*packets, tail] for m in serializer.encode_audio(p)]
    assert all(size % 320 == 0 for size in sizes)
    assert all(size == 3200 for size in sizes[:-1]) and sizes[-1] < 3200


def test_pre_encoded_audio_larger_than_100_kb_is_split_under_the_cap():
    serializer = ExotelFrameSerializer(SID)
    messages = serializer.encode_raw_audio(bytes(320 * 800))  # 256 000 B, already 320-aligned
    sizes = [len(_payload(m)) for m in messages]
    assert sum(sizes) == 256_000 and max(sizes) <= CHUNK_MAX == 99_840
    assert all(size % 320 == 0 for size in sizes)


# --- DTMF, marks, clear, stop ----------------------------------------------------------


def _dtmf(digit: Any, duration: Any = "100") -> str:
    return json.dumps({"event": "dtmf", "stream_sid": SID, "dtmf": {"digit": digit, "duration": duration}})


def test_dtmf_keeps_the_digit_even_when_the_duration_is_unreadable():
    serializer = _started()
    [frame] = serializer.deserialize(_dtmf("#", "soon"))
    assert (frame.button, frame.duration_ms) == (KeypadEntry.POUND, None)


@pytest.mark.parametrize("digit", ["", "55", "x", None, ["5"]])
def test_invalid_dtmf_digits_are_protocol_errors(digit):
    with pytest.raises(RemoteProtocolError):
        _started().deserialize(_dtmf(digit))


def test_a_mark_we_send_comes_back_as_playback_reached():
    serializer = _started()
    [request] = serializer.encode_mark("turn-3-end")
    assert json.loads(request) == {"event": "mark", "stream_sid": SID, "mark": {"name": "turn-3-end"}}
    echo = {"event": "mark", "sequence_number": "15", "stream_sid": SID, "mark": {"name": "turn-3-end"}}
    assert serializer.deserialize(json.dumps(echo)) == [PlaybackMarkReached("turn-3-end")]
    assert ExotelFrameSerializer.supports_playback_acks


def test_clear_names_the_stream():
    assert [json.loads(m) for m in _started().encode_clear()] == [{"event": "clear", "stream_sid": SID}]


@pytest.mark.parametrize("reason", ["stopped", "callended"])
def test_stop_reports_why_the_stream_ended(reason):
    stop = {"event": "stop", "stream_sid": SID, "stop": {"call_sid": "CA1", "reason": reason}}
    assert _started().deserialize(json.dumps(stop)) == [StreamStopped(reason)]


def test_exotel_cannot_send_dtmf_over_the_stream():
    serializer = _started()
    assert not serializer.supports_dtmf_out
    with pytest.raises(LocalProtocolError):
        serializer.serialize(OutputDTMFFrame(buttons="12"))


def test_only_exotels_own_events_go_out_as_transport_messages():
    serializer = _started()
    [message] = serializer.encode_message({"event": "clear"})
    assert json.loads(message) == {"event": "clear", "stream_sid": SID}
    with pytest.raises(LocalProtocolError):
        serializer.encode_message({"event": "hello"})


def test_there_is_no_rest_hang_up_and_the_reason_names_the_hangup_applet():
    serializer = _started()
    assert serializer.hangup_request() is None
    assert "Hangup applet" in (serializer.hangup_skip_reason or "")


# --- protocol violations ---------------------------------------------------------------


def test_messages_for_another_stream_a_second_start_and_binary_frames_are_refused():
    serializer = _started()
    other = json.loads(_media(bytes(320)))
    other["stream_sid"] = "MZother"
    with pytest.raises(RemoteProtocolError):
        serializer.deserialize(json.dumps(other))
    with pytest.raises(RemoteProtocolError, match="second start"):
        serializer.deserialize(LINES[1])
    with pytest.raises(RemoteProtocolError):
        serializer.deserialize(b"\x00\x00")


def test_a_start_for_another_stream_is_refused_without_changing_state():
    msg = copy.deepcopy(START)
    msg["start"]["stream_sid"] = msg["stream_sid"] = "MZother"
    msg["start"]["media_format"]["sample_rate"] = "16000"
    serializer = ExotelFrameSerializer(SID)
    with pytest.raises(RemoteProtocolError):
        serializer.deserialize(json.dumps(msg))
    assert not serializer.started and serializer.input_format.sample_rate == 8000


def test_custom_parameters_as_a_query_string_are_accepted():
    msg = copy.deepcopy(START)
    msg["start"]["custom_parameters"] = "a=1&b=two"
    assert parse_exotel_start(msg).custom_parameters == {"a": "1", "b": "two"}


def test_error_messages_do_not_echo_large_input():
    with pytest.raises(RemoteProtocolError) as caught:
        _started().deserialize(json.dumps({"event": "x" * 10_000}))
    assert len(str(caught.value)) < 120
