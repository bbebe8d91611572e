"""Telnyx media streaming serializer: the wire protocol as documented, reordering, and fuzzing.

tests/fixtures/telnyx.jsonl is a synthetic trace in Telnyx's documented shapes (connected, start,
10 media with chunks 6 and 7 delivered swapped, dtmf, 5 media, mark echo, stop). Its audio is a
phase-continuous 440 Hz tone made with ``phonewire.audio.analysis.tone`` and encoded with
``pcm_to_ulaw``, 160 bytes (20 ms) per media message.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonewire.audio.analysis import dominant_frequency, tone
from phonewire.audio.g711 import pcm_to_ulaw, ulaw_to_pcm
from phonewire.exceptions import ConfigurationError, LocalProtocolError, RemoteProtocolError
from phonewire.frames import InputAudioRawFrame, InputDTMFFrame, KeypadEntry
from phonewire.serializers.base import (
    HangupOutcome,
    MediaFormat,
    PlaybackMarkReached,
    ProviderError,
    StreamStarted,
    StreamStopped,
)
from phonewire.serializers.telnyx import TelnyxFrameSerializer, parse_telnyx_start

FIXTURE = Path(__file__).parent.parent / "fixtures" / "telnyx.jsonl"
LINES = FIXTURE.read_text().splitlines()
MESSAGES = [json.loads(line) for line in LINES]
START = next(m for m in MESSAGES if m["event"] == "start")
STREAM_ID = START["stream_id"]
CALL_CONTROL_ID = START["start"]["call_control_id"]


def dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def serializer(**kwargs: Any) -> TelnyxFrameSerializer:
    return TelnyxFrameSerializer(STREAM_ID, **kwargs)


def start_message(encoding: Any = "PCMU", sample_rate: Any = 8000, **extra: Any) -> str:
    msg = json.loads(json.dumps(START))
    msg["start"]["media_format"] = {"encoding": encoding, "sample_rate": sample_rate, "channels": 1}
    msg["start"].update(extra)
    return dump(msg)


def media(payload: bytes, chunk: int | None = None, track: str = "inbound", stream_id: str = STREAM_ID) -> str:
    body: dict[str, Any] = {"track": track, "timestamp": "0", "payload": b64(payload)}
    if chunk is not None:
        body["chunk"] = str(chunk)
    return dump({"event": "media", "sequence_number": "5", "media": body, "stream_id": stream_id})


def audio_of(frames: list[Any]) -> list[InputAudioRawFrame]:
    return [f for f in frames if isinstance(f, InputAudioRawFrame)]


def packets(count: int) -> list[bytes]:
    """``count`` distinct 20 ms μ-law packets (each one a different constant level)."""
    return [bytes([0x80 + i]) * 160 for i in range(count)]


def push_chunks(ser: TelnyxFrameSerializer, order: list[int], pkts: list[bytes]) -> list[bytes]:
    """Feed packets in ``order`` (1-based chunks); return the μ-law of what came out, in order."""
    out: list[bytes] = []
    for chunk in order:
        out += [pcm_to_ulaw(f.audio) for f in audio_of(ser.deserialize(media(pkts[chunk - 1], chunk)))]
    return out


# --- the fixture trace ----------------------------------------------------------------------


def test_the_fixture_trace_parses_into_start_ordered_audio_dtmf_mark_and_stop() -> None:
    ser = serializer()
    results = [ser.deserialize(line) for line in LINES]
    flat = [item for result in results for item in result]

    assert results[0] == []  # connected
    assert isinstance(flat[0], StreamStarted)
    audio = audio_of(flat)
    assert len(audio) == 15
    assert all(f.sample_rate == 8000 and f.num_channels == 1 for f in audio)
    dtmf = [f for f in flat if isinstance(f, InputDTMFFrame)]
    assert [d.button for d in dtmf] == [KeypadEntry.SEVEN]
    assert dtmf[0].metadata == {"occurred_at": "2026-03-02T10:15:00.213000Z"}
    assert [e for e in flat if isinstance(e, PlaybackMarkReached)] == [PlaybackMarkReached("utterance-1")]
    assert isinstance(flat[-1], StreamStopped)


def test_the_fixture_audio_comes_out_in_chunk_order_although_two_packets_arrived_swapped() -> None:
    ser = serializer()
    audio = audio_of([item for line in LINES for item in ser.deserialize(line)])
    by_chunk = sorted(
        (int(m["media"]["chunk"]), base64.b64decode(m["media"]["payload"])) for m in MESSAGES if m["event"] == "media"
    )
    assert b"".join(f.audio for f in audio) == ulaw_to_pcm(b"".join(p for _, p in by_chunk))
    assert ser.reorder_stats.reordered == 1
    assert ser.reorder_stats.lost == ser.reorder_stats.duplicates == 0
    assert dominant_frequency(b"".join(f.audio for f in audio), 8000) == pytest.approx(440, abs=3)


def test_the_start_message_becomes_call_info_with_caller_numbers_and_custom_parameters() -> None:
    info = parse_telnyx_start(START)
    assert info.provider == "telnyx"
    assert info.stream_id == STREAM_ID
    assert info.call_id == CALL_CONTROL_ID
    assert info.account_id == START["start"]["user_id"]
    assert (info.from_number, info.to_number) == ("+13125550143", "+13125550187")
    assert info.custom_parameters == {"customer_id": "cust_1001", "language": "en-US"}
    assert info.media_format == MediaFormat("mulaw", 8000, 1)
    assert info.start_message is START


@pytest.mark.parametrize(
    ("encoding", "rate", "expected"),
    [
        ("PCMU", 8000, MediaFormat("mulaw", 8000)),
        ("audio/x-mulaw", 8000, MediaFormat("mulaw", 8000)),
        ("PCMA", 8000, MediaFormat("alaw", 8000)),
        ("audio/x-alaw", "8000", MediaFormat("alaw", 8000)),
        ("L16", 16000, MediaFormat("l16", 16000)),
        ("L16", 8000, MediaFormat("l16", 8000)),
    ],
)
def test_the_media_format_is_read_from_the_calls_own_start_in_new_and_old_spellings(
    encoding: str, rate: Any, expected: MediaFormat
) -> None:
    info = parse_telnyx_start(json.loads(start_message(encoding, rate)))
    assert info.media_format == expected


@pytest.mark.parametrize(("encoding", "rate"), [("OPUS", 16000), ("G722", 8000), ("PCMU", 16000), ("L16", 24000)])
def test_a_codec_or_rate_phonewire_cannot_decode_is_a_remote_protocol_error(encoding: str, rate: int) -> None:
    with pytest.raises(RemoteProtocolError, match="unsupported"):
        serializer().deserialize(start_message(encoding, rate))


def test_custom_parameters_given_as_a_name_value_array_are_accepted_too() -> None:
    msg = json.loads(start_message())
    msg["start"]["custom_parameters"] = [{"name": "a", "value": "1"}, {"name": "n", "value": 2}, "junk"]
    assert parse_telnyx_start(msg).custom_parameters == {"a": "1", "n": "2"}


def test_a_start_in_l16_switches_the_input_format_to_the_calls_rate() -> None:
    ser = serializer()
    [started] = ser.deserialize(start_message("L16", 16000))
    assert isinstance(started, StreamStarted)
    assert ser.input_format == MediaFormat("l16", 16000)
    pcm = tone(440, 0.02, 16000)
    [frame] = ser.deserialize(media(np.frombuffer(pcm, "<i2").astype(">i2").tobytes(), 1))
    assert frame.sample_rate == 16000 and frame.audio == pcm


# --- audio round trips ----------------------------------------------------------------------


def wire_payload(message: str) -> bytes:
    return base64.b64decode(json.loads(message)["media"]["payload"])


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_a_440_hz_tone_survives_g711_both_ways(codec: str) -> None:
    ser = serializer(send_encoding=codec, receive_encoding=codec)
    pcm = tone(440, 0.2, 8000)
    [message] = ser.encode_audio(pcm)
    [frame] = ser.deserialize(media(wire_payload(message)))
    assert frame.sample_rate == 8000
    assert len(frame.audio) == len(pcm)
    assert dominant_frequency(frame.audio, 8000) == pytest.approx(440, abs=2)


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("byte_order", ["big", "little"])
def test_l16_round_trips_bit_exactly_at_8_and_16_khz(rate: int, byte_order: str) -> None:
    params = TelnyxFrameSerializer.InputParams(telnyx_sample_rate=rate, l16_byte_order=byte_order)  # type: ignore[arg-type]
    ser = serializer(send_encoding="L16", receive_encoding="L16", params=params)
    assert ser.input_format == ser.output_format == MediaFormat("l16", rate)
    pcm = tone(440, 0.2, rate)
    [message] = ser.encode_audio(pcm)
    [frame] = ser.deserialize(media(wire_payload(message)))
    assert frame.audio == pcm and frame.sample_rate == rate
    assert dominant_frequency(frame.audio, rate) == pytest.approx(440, abs=2)


def test_l16_is_big_endian_on_the_wire_by_default_as_rtp_defines_it() -> None:
    ser = serializer(send_encoding="L16", receive_encoding="L16")
    [message] = ser.encode_audio((0x1234).to_bytes(2, "little") + (-2).to_bytes(2, "little", signed=True))
    assert wire_payload(message) == bytes([0x12, 0x34, 0xFF, 0xFE])
    [frame] = ser.deserialize(media(bytes([0x12, 0x34])))
    assert frame.audio == (0x1234).to_bytes(2, "little")


def test_little_endian_l16_can_be_chosen_when_a_deployment_needs_it() -> None:
    params = TelnyxFrameSerializer.InputParams(l16_byte_order="little")
    ser = serializer(send_encoding="L16", params=params)
    [message] = ser.encode_audio((0x1234).to_bytes(2, "little"))
    assert wire_payload(message) == bytes([0x34, 0x12])


def test_an_l16_payload_with_half_a_sample_is_rejected() -> None:
    ser = serializer(receive_encoding="L16")
    with pytest.raises(RemoteProtocolError, match="odd"):
        ser.deserialize(media(b"\x00\x01\x02"))


def test_pre_encoded_audio_is_sent_as_is_for_g711() -> None:
    [message] = serializer().encode_raw_audio(b"\xff\x7f")
    assert json.loads(message) == {"event": "media", "media": {"payload": b64(b"\xff\x7f")}}


# --- naming, configuration ------------------------------------------------------------------


def test_pipecats_encoding_names_keep_their_telnyx_meaning() -> None:
    ser = serializer(outbound_encoding="PCMA", inbound_encoding="L16")
    assert ser.input_format == MediaFormat("alaw", 8000)  # outbound_encoding: what Telnyx sends us
    assert ser.output_format == MediaFormat("l16", 16000)  # inbound_encoding: what we send Telnyx


def test_the_clearer_aliases_say_the_same_thing_and_contradictions_are_refused() -> None:
    ser = serializer(receive_encoding="PCMA", send_encoding="audio/x-mulaw")
    assert (ser.input_format.encoding, ser.output_format.encoding) == ("alaw", "mulaw")
    with pytest.raises(ConfigurationError, match="contradicts"):
        serializer(inbound_encoding="PCMA", send_encoding="PCMU")


def test_the_calls_media_format_overrides_the_configured_receive_encoding() -> None:
    ser = serializer(outbound_encoding="PCMU", media_format=MediaFormat("alaw", 8000))
    assert ser.input_format == MediaFormat("alaw", 8000)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"inbound_encoding": "OPUS"},
        {"outbound_encoding": "G722"},
        {"media_format": MediaFormat("l16", 24000)},
        {"media_format": MediaFormat("mulaw", 8000, 2)},
        {"params": TelnyxFrameSerializer.InputParams(telnyx_sample_rate=22050)},
        {"params": TelnyxFrameSerializer.InputParams(reorder_window=-1)},
        {"params": TelnyxFrameSerializer.InputParams(reorder_window=26)},
    ],
)
def test_unsupported_configuration_fails_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        serializer(**kwargs)


def test_the_users_params_object_is_never_modified() -> None:
    params = TelnyxFrameSerializer.InputParams(auto_hang_up=False)
    before = repr(params)
    ser = serializer(params=params, outbound_encoding="PCMA", inbound_encoding="L16")
    ser.deserialize(start_message("L16", 16000))
    assert repr(params) == before and ser.params is params


def test_packets_are_20_ms_and_a_short_tail_is_padded_to_a_full_20_ms() -> None:
    assert serializer().packet_policy.packet_bytes == 160
    assert serializer().packet_policy.multiple_of == 160
    l16 = serializer(send_encoding="L16").packet_policy
    assert (l16.packet_bytes, l16.multiple_of) == (640, 640)
    assert serializer().silence_byte == 0xFF and serializer(send_encoding="PCMA").silence_byte == 0xD5


def test_the_api_key_never_appears_in_repr() -> None:
    ser = serializer(call_control_id="v3:abc", api_key="KEYsecret123")
    assert "KEYsecret123" not in repr(ser)
    assert "KEYsecret123" not in repr(ser.hangup_request())


# --- outbound messages, marks, clear, errors ------------------------------------------------


def test_outbound_media_mark_and_clear_match_the_documented_shapes_without_a_stream_id() -> None:
    ser = serializer()
    [media_msg] = ser.encode_audio(bytes(320))
    assert json.loads(media_msg) == {"event": "media", "media": {"payload": b64(b"\xff" * 160)}}
    assert ser.encode_mark("utterance-1") == ['{"event":"mark","mark":{"name":"utterance-1"}}']
    assert ser.encode_clear() == ['{"event":"clear"}']


def test_a_mark_echo_becomes_playback_mark_reached() -> None:
    echo = dump({"event": "mark", "stream_id": STREAM_ID, "sequence_number": "9", "mark": {"name": "u-2"}})
    assert serializer().deserialize(echo) == [PlaybackMarkReached("u-2")]


def test_transport_messages_are_limited_to_the_three_documented_events() -> None:
    ser = serializer()
    assert ser.encode_message({"event": "mark", "mark": {"name": "x"}}) == ['{"event":"mark","mark":{"name":"x"}}']
    with pytest.raises(LocalProtocolError):
        ser.encode_message({"event": "custom", "data": 1})
    with pytest.raises(LocalProtocolError):
        ser.encode_message("hello")


def test_outbound_dtmf_is_refused_with_a_pointer_to_the_send_dtmf_rest_action() -> None:
    assert TelnyxFrameSerializer.supports_dtmf_out is False
    with pytest.raises(LocalProtocolError, match="send_dtmf"):
        serializer().encode_dtmf("123")


def test_an_error_frame_surfaces_code_title_and_detail() -> None:
    msg = {
        "event": "error",
        "payload": {"code": 100004, "title": "invalid_media", "detail": "payload is not base64"},
        "stream_id": STREAM_ID,
    }
    assert serializer().deserialize(dump(msg)) == [ProviderError(100004, "invalid_media", "payload is not base64")]


def test_an_error_frame_with_odd_fields_is_still_reported_but_trimmed() -> None:
    msg = {"event": "error", "payload": {"code": [1], "detail": "x" * 10_000}}
    [err] = serializer().deserialize(dump(msg))
    assert isinstance(err, ProviderError)
    assert err.code is None and err.title == "error" and len(err.detail) == 500


# --- DTMF -----------------------------------------------------------------------------------


def dtmf(digit: Any, occurred_at: str | None = "2026-03-02T10:15:00.5Z") -> str:
    msg: dict[str, Any] = {"event": "dtmf", "stream_id": STREAM_ID, "sequence_number": "7", "dtmf": {"digit": digit}}
    if occurred_at is not None:
        msg["occurred_at"] = occurred_at
    return dump(msg)


@pytest.mark.parametrize(("digit", "button"), [("0", "0"), ("#", "#"), ("*", "*"), ("D", "D"), ("a", "A")])
def test_dtmf_digits_arrive_with_their_occurred_at_timestamp(digit: str, button: str) -> None:
    [frame] = serializer().deserialize(dtmf(digit))
    assert isinstance(frame, InputDTMFFrame)
    assert frame.button == KeypadEntry(button)
    assert frame.metadata == {"occurred_at": "2026-03-02T10:15:00.5Z"}


def test_a_dtmf_delivered_twice_with_the_same_occurred_at_is_dropped_and_counted() -> None:
    ser = serializer()
    assert len(ser.deserialize(dtmf("5"))) == 1
    assert ser.deserialize(dtmf("5")) == []
    assert len(ser.deserialize(dtmf("5", "2026-03-02T10:15:01Z"))) == 1  # a second press
    assert ser.duplicate_dtmf == 1


@pytest.mark.parametrize("digit", ["E", "12", "", 5, None])
def test_an_invalid_dtmf_digit_is_a_remote_protocol_error(digit: Any) -> None:
    with pytest.raises(RemoteProtocolError, match="DTMF"):
        serializer().deserialize(dtmf(digit))


# --- reordering -----------------------------------------------------------------------------


def test_out_of_order_packets_come_out_in_order() -> None:
    pkts = packets(6)
    assert push_chunks(serializer(), [1, 3, 2, 5, 4, 6], pkts) == pkts


def test_a_first_packet_overtaken_by_the_second_is_still_played_first() -> None:
    pkts = packets(3)
    assert push_chunks(serializer(), [2, 1, 3], pkts) == pkts


def test_a_late_duplicate_is_dropped_and_counted() -> None:
    ser = serializer()
    pkts = packets(4)
    assert push_chunks(ser, [1, 2, 2, 3, 1, 4], pkts) == pkts
    assert ser.reorder_stats.duplicates == 2


def test_a_missing_packet_stalls_audio_by_at_most_three_packets_then_is_given_up() -> None:
    ser = serializer()
    pkts = packets(7)
    released = [len(push_chunks(ser, [c], pkts)) for c in (1, 3, 4, 5, 6, 7)]
    assert released == [1, 0, 0, 0, 4, 1]  # 3 held (60 ms), the 4th releases them all
    assert ser.reorder_stats.lost == 1
    assert push_chunks(ser, [2], pkts) == []  # arrives after its gap was given up
    assert ser.reorder_stats.late == 1


def test_stop_releases_held_audio_before_the_stream_stopped_event() -> None:
    ser = serializer()
    pkts = packets(3)
    push_chunks(ser, [1, 3], pkts)
    out = ser.deserialize(dump({"event": "stop", "stop": {}, "stream_id": STREAM_ID}))
    assert [pcm_to_ulaw(f.audio) for f in audio_of(out)] == [pkts[2]]
    assert isinstance(out[-1], StreamStopped)


def test_held_audio_can_be_flushed_when_the_socket_closes_without_a_stop() -> None:
    ser = serializer()
    pkts = packets(3)
    push_chunks(ser, [1, 3], pkts)
    assert [pcm_to_ulaw(f.audio) for f in ser.flush_audio()] == [pkts[2]]


def test_a_restarted_chunk_counter_does_not_silence_the_caller() -> None:
    ser = serializer()
    pkts = packets(4)
    push_chunks(ser, list(range(1, 4)), pkts)
    for chunk in range(4, 200):
        ser.deserialize(media(pkts[3], chunk))
    assert len(push_chunks(ser, [1, 2, 3], pkts)) == 3
    assert ser.reorder_stats.resyncs == 1


def test_a_reorder_window_of_zero_passes_packets_through_as_they_come() -> None:
    ser = serializer(params=TelnyxFrameSerializer.InputParams(reorder_window=0))
    pkts = packets(3)
    assert push_chunks(ser, [1, 3, 2], pkts) == [pkts[0], pkts[2]]


@given(jitter=st.lists(st.floats(0, 3.99), min_size=1, max_size=40))
@settings(max_examples=200, deadline=None)
def test_any_delivery_jittered_by_at_most_the_window_loses_nothing_and_comes_out_in_order(
    jitter: list[float],
) -> None:
    pkts = packets(len(jitter))
    order = [chunk for _, chunk in sorted((c + j, c) for c, j in enumerate(jitter, start=1))]
    ser = serializer()
    out = push_chunks(ser, order, pkts) + [pcm_to_ulaw(f.audio) for f in ser.flush_audio()]
    assert out == pkts
    assert ser.reorder_stats.lost == ser.reorder_stats.late == 0


@given(order=st.lists(st.integers(1, 40), max_size=60))
@settings(max_examples=200, deadline=None)
def test_any_delivery_order_releases_each_chunk_at_most_once_ascending_and_holds_at_most_three(
    order: list[int],
) -> None:
    pkts = packets(40)
    ser = serializer()
    out: list[bytes] = []
    for chunk in order:
        out += push_chunks(ser, [chunk], pkts)
        assert ser._reorder.held <= 3
    out += [pcm_to_ulaw(f.audio) for f in ser.flush_audio()]
    numbers = [pkts.index(p) for p in out]
    assert numbers == sorted(set(numbers))
    stats = ser.reorder_stats
    assert stats.received == len(order) == len(out) + stats.duplicates + stats.late


def test_media_without_a_chunk_number_is_played_immediately() -> None:
    assert len(serializer().deserialize(media(b"\xff" * 160))) == 1


def test_the_other_legs_track_is_not_mistaken_for_the_caller() -> None:
    assert serializer().deserialize(media(b"\xff" * 160, 1, track="outbound")) == []


# --- protocol errors ------------------------------------------------------------------------


def test_a_second_start_and_a_start_for_another_stream_are_refused() -> None:
    ser = serializer()
    ser.deserialize(LINES[1])
    with pytest.raises(RemoteProtocolError, match="second start"):
        ser.deserialize(LINES[1])
    with pytest.raises(RemoteProtocolError, match="another stream_id"):
        TelnyxFrameSerializer("other").deserialize(LINES[1])


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b'{"event":"media"}', "binary"),
        ("not json", "invalid JSON"),
        ("[1,2]", "not an object"),
        ('{"event":"bogus"}', "unknown event"),
        ('{"event":"media","media":{"payload":"@@@"}}', "base64"),
        ('{"event":"media","media":{"payload":"","chunk":"x1"}}', "chunk"),
        (media(b"\xff", 1, stream_id="other"), "another stream_id"),
        ('{"event":"mark","mark":{}}', "mark"),
    ],
)
def test_bad_messages_raise_remote_protocol_error_with_a_short_message(data: Any, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match) as info:
        serializer().deserialize(data)
    assert len(str(info.value)) < 120


# --- hang-up --------------------------------------------------------------------------------


def test_the_hang_up_request_is_a_bearer_authenticated_post_to_call_control() -> None:
    request = serializer(call_control_id="v3:abc-123", api_key="KEY123").hangup_request()
    assert request is not None
    assert request.method == "POST"
    assert request.url == "https://api.telnyx.com/v2/calls/v3:abc-123/actions/hangup"
    assert request.headers == {"Authorization": "Bearer KEY123"}
    assert request.json == {} and request.form is None


def test_the_call_control_id_is_learnt_from_start_and_cannot_escape_the_url_path() -> None:
    ser = serializer(api_key="KEY")
    assert ser.hangup_skip_reason == "missing call_control_id"
    ser.deserialize(start_message(call_control_id="../../v2/other?x=1"))
    assert ser.hangup_request() is None
    assert (ser.hangup_skip_reason or "").startswith("invalid call_control_id")
    assert "other" not in (ser.hangup_skip_reason or "")  # peer input is never echoed into logs


@pytest.mark.parametrize(
    "call_control_id",
    ["v3:a/b", "v3:x?y=1", "v2:abc#frag", "v3:", "v3:abc def", "v3:ab%2Fcd", "..", "v3:" + "a" * 500, "v3:é"],
)
def test_a_call_control_id_outside_telnyxs_format_never_reaches_a_url(call_control_id: str) -> None:
    assert serializer(call_control_id=call_control_id, api_key="k").hangup_request() is None


@pytest.mark.parametrize(
    "call_control_id",
    [
        "v3:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ",
        "v2:T02llQ-_",
        "v3:abc=",
        "3e6f995f-0000-4b21-89a4-9e1819c043bc",
    ],
)
def test_real_world_call_control_ids_are_hung_up(call_control_id: str) -> None:
    request = serializer(call_control_id=call_control_id, api_key="k").hangup_request()
    assert request is not None and f"/v2/calls/{call_control_id}/actions" in request.url


def test_hang_up_is_skipped_with_a_reason_when_off_or_without_credentials() -> None:
    off = serializer(call_control_id="v3:c", api_key="k", params=TelnyxFrameSerializer.InputParams(auto_hang_up=False))
    assert off.hangup_request() is None and off.hangup_skip_reason == "auto_hang_up is off"
    assert serializer().hangup_skip_reason == "missing call_control_id, api_key"


def test_a_base_url_override_points_hang_up_at_a_local_fake() -> None:
    params = TelnyxFrameSerializer.InputParams(base_url="http://127.0.0.1:9/")
    request = serializer(call_control_id="v3:c1", api_key="k", params=params).hangup_request()
    assert request is not None and request.url == "http://127.0.0.1:9/v2/calls/v3:c1/actions/hangup"


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b'{"data":{"result":"ok"}}', HangupOutcome.DONE),
        (422, b'{"errors":[{"code":"90018","title":"Call has already ended"}]}', HangupOutcome.ALREADY_ENDED),
        (422, b'{"errors":[{"code":90018}]}', HangupOutcome.ALREADY_ENDED),
        (422, b'{"errors":[{"code":"90015","title":"Invalid value"}]}', HangupOutcome.FAILED),
        (422, b"<html>", HangupOutcome.FAILED),
        (401, b"", HangupOutcome.FAILED),
        (429, b"", HangupOutcome.RETRY),
        (503, b"", HangupOutcome.RETRY),
    ],
)
def test_hang_up_responses_are_interpreted_as_telnyx_documents_them(
    status: int, body: bytes, outcome: HangupOutcome
) -> None:
    request = serializer(call_control_id="v3:c", api_key="k").hangup_request()
    assert request is not None
    assert request.interpret(status, body) is outcome


@given(status=st.integers(100, 599), body=st.binary(max_size=200))
@settings(max_examples=100, deadline=None)
def test_interpreting_any_hang_up_response_never_raises(status: int, body: bytes) -> None:
    request = serializer(call_control_id="v3:c", api_key="k").hangup_request()
    assert request is not None
    assert isinstance(request.interpret(status, body), HangupOutcome)
