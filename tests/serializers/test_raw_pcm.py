"""Raw-PCM serializer (docs/raw-pcm.md): binary s16le audio both ways, optional JSON control
messages, jambonz and FreeSWITCH first frames, and robustness to hostile input."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from phonewire.audio import Packetizer, dominant_frequency, tone
from phonewire.exceptions import ConfigurationError, LocalProtocolError, RemoteProtocolError
from phonewire.frames import (
    InputAudioRawFrame,
    InputDTMFFrame,
    InputTransportMessageFrame,
    KeypadEntry,
    OutputDTMFFrame,
    OutputTransportMessageFrame,
)
from phonewire.serializers.base import (
    ClearAcknowledged,
    MediaFormat,
    PlaybackMarkReached,
    StreamStarted,
    StreamStopped,
)
from phonewire.serializers.raw_pcm import RawPCMSerializer, parse_raw_pcm_start

#: The trace the serializer contract fuzzes (test_serializer_contract.py): a start, a jambonz
#: first frame, then every control message.
TRACE = [json.loads(line) for line in (Path(__file__).parent / "raw_pcm.jsonl").read_text().splitlines()]
START, JAMBONZ = TRACE[0], TRACE[1]


def _started(**start: Any) -> RawPCMSerializer:
    serializer = RawPCMSerializer()
    serializer.deserialize(json.dumps({**START, **start}))
    return serializer


# --- starting a stream -----------------------------------------------------------------


def test_a_binary_first_frame_starts_the_stream_with_the_defaults():
    serializer = RawPCMSerializer(sample_rate=16000)
    started, frame = serializer.deserialize(bytes(640))
    assert isinstance(started, StreamStarted)
    assert started.info.media_format == MediaFormat("l16", 16000, 1) and started.info.call_id is None
    assert isinstance(frame, InputAudioRawFrame) and frame.sample_rate == 16000
    assert serializer.dialect == "phonewire"
    assert len(serializer.deserialize(bytes(640))) == 1  # no second StreamStarted


def test_a_start_message_sets_rate_ids_numbers_and_custom_parameters():
    serializer = RawPCMSerializer(sample_rate=16000)
    [started] = serializer.deserialize(json.dumps(START))
    info = started.info
    assert (info.provider, info.call_id, info.from_number, info.to_number) == (
        "raw_pcm",
        "call-42",
        "+15550100",
        "+15550199",
    )
    assert info.custom_parameters == {"tenant": "acme", "attempt": "2"}
    assert serializer.input_format == serializer.output_format == MediaFormat("l16", 8000, 1)
    assert serializer.packet_policy.packet_bytes == 320


def test_a_jambonz_first_frame_starts_the_stream_and_switches_acks_off():
    serializer = RawPCMSerializer(sample_rate=8000)
    [started] = serializer.deserialize(json.dumps(JAMBONZ))
    info = started.info
    assert (info.call_id, info.account_id) == (JAMBONZ["callSid"], "acc-1")
    assert info.media_format.sample_rate == 16000
    assert info.custom_parameters["bot"] == "sales" and info.custom_parameters["direction"] == "inbound"
    assert serializer.dialect == "jambonz"
    assert not serializer.supports_playback_acks and not serializer.supports_dtmf_out
    assert RawPCMSerializer.supports_playback_acks  # only this instance changed
    assert serializer.encode_mark("m") == []
    assert serializer.encode_clear() == ['{"type":"killAudio"}']
    with pytest.raises(LocalProtocolError):
        serializer.encode_dtmf("1")


def test_jambonz_stereo_streams_are_refused():
    with pytest.raises(RemoteProtocolError, match="mono"):
        RawPCMSerializer().deserialize(json.dumps({**JAMBONZ, "mixType": "stereo"}))


def test_jambonz_dtmf_spelled_dtmf_is_understood():
    serializer = RawPCMSerializer()
    serializer.deserialize(json.dumps(JAMBONZ))
    [frame] = serializer.deserialize('{"event":"dtmf","dtmf":"#","duration":"1200"}')
    assert (frame.button, frame.duration_ms) == (KeypadEntry.POUND, 1200)


def test_freeswitch_metadata_text_starts_the_stream_as_a_custom_parameter():
    serializer = RawPCMSerializer(sample_rate=8000)
    [started] = serializer.deserialize("agent=7;queue=sales")
    assert started.info.custom_parameters == {"metadata": "agent=7;queue=sales"}
    assert started.info.media_format.sample_rate == 8000
    assert serializer.dialect == "metadata" and serializer.encode_mark("m") == []
    [frame] = serializer.deserialize(bytes(320))
    assert frame.sample_rate == 8000


def test_freeswitch_json_metadata_becomes_custom_parameters():
    [started] = RawPCMSerializer().deserialize('{"uuid":"fs-1","campaign":"x"}')
    assert started.info.call_id == "fs-1"
    assert started.info.custom_parameters == {"uuid": "fs-1", "campaign": "x"}


def test_control_messages_before_any_start_start_the_stream_first():
    started, frame = RawPCMSerializer().deserialize('{"event":"dtmf","digit":"1"}')
    assert isinstance(started, StreamStarted) and isinstance(frame, InputDTMFFrame)


def test_a_bad_first_control_message_does_not_start_the_stream():
    serializer = RawPCMSerializer()
    with pytest.raises(RemoteProtocolError):
        serializer.deserialize('{"event":"dtmf","digit":"Q"}')
    assert not serializer.started


@pytest.mark.parametrize("rate", [7000, "fast", 0, 96000])
def test_unsupported_declared_rates_are_protocol_errors(rate):
    with pytest.raises(RemoteProtocolError):
        RawPCMSerializer().deserialize(json.dumps({**START, "sample_rate": rate}))


def test_parse_raw_pcm_start_handles_each_kind_of_first_message():
    assert parse_raw_pcm_start(None, sample_rate=24000).media_format.sample_rate == 24000
    assert parse_raw_pcm_start("hello").custom_parameters == {"metadata": "hello"}
    assert parse_raw_pcm_start(START).call_id == "call-42"
    assert parse_raw_pcm_start(JAMBONZ).media_format.sample_rate == 16000
    original = copy.deepcopy(JAMBONZ)
    parse_raw_pcm_start(JAMBONZ)
    assert JAMBONZ == original  # the message is never modified


# --- audio -----------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 48000])
def test_pcm_round_trips_bit_exact_and_keeps_the_tone_at_each_rate(rate):
    serializer = _started(sample_rate=rate)
    policy = serializer.packet_policy
    assert (policy.packet_bytes, policy.multiple_of) == (rate // 50 * 2, 2)
    pcm = tone(440, 0.2, rate)
    packetizer = Packetizer(policy.packet_bytes, multiple_of=policy.multiple_of)
    sent = [m for p in packetizer.push(pcm) for m in serializer.encode_audio(p)]
    assert all(isinstance(m, bytes) and len(m) == policy.packet_bytes for m in sent)
    received = b"".join(f.audio for m in sent for f in serializer.deserialize(m))
    assert received == pcm
    assert dominant_frequency(received, rate) == pytest.approx(440, abs=2)


def test_inbound_frames_of_any_even_length_are_accepted_and_odd_ones_refused():
    serializer = _started()
    assert len(serializer.deserialize(bytes(1234))[0].audio) == 1234
    assert serializer.deserialize(b"") == []
    with pytest.raises(RemoteProtocolError, match="odd-length"):
        serializer.deserialize(bytes(3))


def test_output_rate_and_packet_duration_can_be_configured():
    params = RawPCMSerializer.InputParams(packet_ms=40, output_sample_rate=24000)
    serializer = RawPCMSerializer(sample_rate=8000, params=params)
    serializer.deserialize(json.dumps(START))
    assert serializer.input_format.sample_rate == 8000 and serializer.output_format.sample_rate == 24000
    assert serializer.packet_policy.packet_bytes == 1920


@pytest.mark.parametrize(
    "kwargs",
    [{"sample_rate": 11025}, {"params": RawPCMSerializer.InputParams(packet_ms=5)}],
)
def test_impossible_configurations_are_refused(kwargs):
    with pytest.raises(ConfigurationError):
        RawPCMSerializer(**kwargs)


# --- control messages ------------------------------------------------------------------


def test_inbound_control_messages_become_frames_and_events():
    serializer = _started()
    results = [serializer.deserialize(json.dumps(m)) for m in TRACE[2:]]
    [dtmf], [mark], [cleared], [message], [stop] = results
    assert (dtmf.button, dtmf.duration_ms) == (KeypadEntry.FIVE, 80)
    assert mark == PlaybackMarkReached("utterance-1")
    assert cleared == ClearAcknowledged()
    assert isinstance(message, InputTransportMessageFrame) and message.message == {"kind": "typing"}
    assert stop == StreamStopped("hangup")


def test_outbound_control_messages_follow_the_documented_shapes():
    serializer = _started()
    assert [json.loads(m) for m in serializer.encode_mark("u1")] == [{"event": "mark", "name": "u1"}]
    assert [json.loads(m) for m in serializer.encode_clear()] == [{"event": "clear"}]
    assert [json.loads(m) for m in serializer.serialize(OutputDTMFFrame(buttons="12#"))] == [
        {"event": "dtmf", "digits": "12#"}
    ]
    message = OutputTransportMessageFrame(message={"kind": "transcript", "text": "hi"})
    assert [json.loads(m) for m in serializer.serialize(message)] == [
        {"event": "message", "data": {"kind": "transcript", "text": "hi"}}
    ]


@pytest.mark.parametrize("digits", ["", "12x", "w"])
def test_invalid_outbound_dtmf_is_refused_locally(digits):
    with pytest.raises(LocalProtocolError):
        _started().encode_dtmf(digits)


def test_messages_that_cannot_be_json_are_refused_locally():
    with pytest.raises(LocalProtocolError):
        _started().encode_message({"when": object()})


def test_after_start_non_json_text_unknown_events_and_a_second_start_are_refused():
    serializer = _started()
    for message in ["plain text", '{"event":"dance"}', '{"no":"event"}', json.dumps(START)]:
        with pytest.raises(RemoteProtocolError):
            serializer.deserialize(message)


def test_a_mark_without_a_name_is_a_protocol_error():
    with pytest.raises(RemoteProtocolError):
        _started().deserialize('{"event":"mark","name":3}')


def test_there_is_no_hang_up_api():
    serializer = _started()
    assert serializer.hangup_request() is None and "closing the WebSocket" in (serializer.hangup_skip_reason or "")
