"""TwilioFrameSerializer: every documented message, outbound shapes, hang-up, and fuzzing."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from phonewire.audio.analysis import dominant_frequency, tone
from phonewire.audio.g711 import pcm_to_ulaw
from phonewire.exceptions import ConfigurationError, LocalProtocolError, RemoteProtocolError
from phonewire.frames import InputAudioRawFrame, InputDTMFFrame
from phonewire.serializers.base import HangupOutcome, PlaybackMarkReached, StreamStarted, StreamStopped
from phonewire.serializers.twilio import TwilioFrameSerializer

FIXTURE = Path(__file__).parent.parent / "fixtures" / "twilio.jsonl"
SID = "MZ7ad72d46820dfaa83cd3e75c111c08de"


CALL = "CA" + "a1" * 16
ACCOUNT = "AC" + "b2" * 16


def serializer(**kw: object) -> TwilioFrameSerializer:
    return TwilioFrameSerializer(SID, CALL, ACCOUNT, "token", **kw)  # type: ignore[arg-type]


def test_a_recorded_call_parses_into_start_audio_dtmf_mark_and_stop() -> None:
    s = serializer()
    kinds = [type(x).__name__ for line in FIXTURE.read_text().splitlines() for x in s.deserialize(line)]
    assert kinds[0] == "StreamStarted"
    assert kinds.count("InputAudioRawFrame") == 15
    assert kinds[11] == "InputDTMFFrame"
    assert kinds[-2:] == ["PlaybackMarkReached", "StreamStopped"]


def test_the_start_message_yields_the_calls_data() -> None:
    start = FIXTURE.read_text().splitlines()[1]
    (event,) = serializer().deserialize(start)
    assert isinstance(event, StreamStarted)
    info = event.info
    assert (info.provider, info.stream_id, info.media_format.encoding, info.media_format.sample_rate) == (
        "twilio",
        SID,
        "mulaw",
        8000,
    )
    assert info.call_id.startswith("CA") and info.account_id.startswith("AC")
    assert info.from_number == "+14155550100" and info.to_number == "+14155550199"


def test_inbound_media_decodes_to_pcm_at_8khz_with_the_tone_intact() -> None:
    s = serializer()
    lines = FIXTURE.read_text().splitlines()
    frames = [f for line in lines[2:12] for f in s.deserialize(line)]
    pcm = b"".join(f.audio for f in frames if isinstance(f, InputAudioRawFrame))
    assert all(isinstance(f, InputAudioRawFrame) and f.sample_rate == 8000 for f in frames)
    assert abs(dominant_frequency(pcm, 8000) - 440) < 5


def test_dtmf_mark_and_stop_become_their_events() -> None:
    s = serializer()
    dtmf = {"event": "dtmf", "streamSid": SID, "sequenceNumber": "5", "dtmf": {"track": "inbound_track", "digit": "#"}}
    mark = {"event": "mark", "sequenceNumber": "6", "streamSid": SID, "mark": {"name": "u1"}}
    stop = {"event": "stop", "sequenceNumber": "7", "streamSid": SID, "stop": {"accountSid": "AC", "callSid": "CA"}}
    (frame,) = s.deserialize(json.dumps(dtmf))
    assert isinstance(frame, InputDTMFFrame) and frame.button.value == "#"
    assert s.deserialize(json.dumps(mark)) == [PlaybackMarkReached("u1")]
    assert s.deserialize(json.dumps(stop)) == [StreamStopped("stop")]


def test_outbound_media_mark_and_clear_have_twilios_exact_shapes() -> None:
    s = serializer()
    pcm = tone(440, 0.02, 8000)
    media = json.loads(s.encode_audio(pcm)[0])
    assert media == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": base64.b64encode(pcm_to_ulaw(pcm)).decode()},
    }
    assert json.loads(s.encode_mark("m1")[0]) == {"event": "mark", "streamSid": SID, "mark": {"name": "m1"}}
    assert json.loads(s.encode_clear()[0]) == {"event": "clear", "streamSid": SID}


def test_only_twilios_own_events_may_be_sent_as_transport_messages() -> None:
    s = serializer()
    assert json.loads(s.encode_message({"event": "mark", "mark": {"name": "x"}})[0])["streamSid"] == SID
    with pytest.raises(LocalProtocolError):  # Twilio would answer this with error 31924
        s.encode_message({"hello": "world"})


def test_the_hang_up_request_posts_status_completed_with_basic_auth() -> None:
    req = serializer().hangup_request()
    assert req is not None
    url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}.json"
    assert (req.method, req.url) == ("POST", url)
    assert req.form == {"Status": "completed"}
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(f"{ACCOUNT}:token".encode()).decode()
    assert req.interpret(200, b"") is HangupOutcome.DONE
    assert req.interpret(404, b'{"code":20404}') is HangupOutcome.ALREADY_ENDED
    assert req.interpret(503, b"") is HangupOutcome.RETRY
    assert req.interpret(401, b"") is HangupOutcome.FAILED


@pytest.mark.parametrize(
    ("account", "call"),
    [
        (f"{ACCOUNT}/Calls/CA{'9' * 32}.json?x=", CALL),  # issue 11 finding 4: re-targets another call
        (ACCOUNT, f"{CALL}/../CA{'9' * 32}"),
        ("AC" + "b2" * 15, CALL),  # too short
        (ACCOUNT, "CA" + "g" * 32),  # not hex
        (ACCOUNT + "\n", CALL),
        ("..", CALL),
        (ACCOUNT, "MZ" + "a" * 32),  # a stream SID, not a call SID
    ],
)
def test_sids_outside_twilios_format_make_no_hang_up_request(account: str, call: str) -> None:
    s = TwilioFrameSerializer(SID, call, account, "token")
    assert s.hangup_request() is None
    reason = s.hangup_skip_reason or ""
    assert reason.startswith("invalid ") and "Calls" not in reason and "\n" not in reason


def test_regional_and_overridden_api_roots() -> None:
    assert serializer(region="au1", edge="sydney").api_root == "https://api.sydney.au1.twilio.com"
    assert serializer(base_url="http://127.0.0.1:9/").api_root == "http://127.0.0.1:9"
    with pytest.raises(ConfigurationError):  # region without edge
        serializer(region="au1")


def test_without_credentials_hang_up_is_skipped_with_a_reason() -> None:
    s = TwilioFrameSerializer(SID)
    assert s.hangup_request() is None
    assert "auth_token" in (s.hangup_skip_reason or "")
    off = TwilioFrameSerializer(SID, "CA", "AC", "t", TwilioFrameSerializer.InputParams(auto_hang_up=False))
    assert off.hangup_request() is None and off.hangup_skip_reason == "auto_hang_up is off"


def test_the_auth_token_never_appears_in_the_repr() -> None:
    assert "token" not in repr(serializer()).replace("stream", "")


BAD = [
    "",
    "{",
    "[]",
    "null",
    '"media"',
    '{"event":1}',
    '{"event":"media"}',
    '{"event":"media","media":[]}',
    '{"event":"media","media":{"payload":5}}',
    '{"event":"media","media":{"payload":"@@@"}}',
    '{"event":"start","start":{}}',
    '{"event":"dtmf","dtmf":{"digit":"x"}}',
    '{"event":"mark","mark":{}}',
    '{"event":"media","streamSid":"MZother","media":{"payload":"AA=="}}',
    "[" * 100000,
    b"\x00\xff",
]


def test_each_malformed_message_raises_a_remote_protocol_error() -> None:
    for bad in BAD:
        try:
            serializer().deserialize(bad)
        except RemoteProtocolError:
            continue
        raise AssertionError(f"accepted {bad[:40]!r}")
