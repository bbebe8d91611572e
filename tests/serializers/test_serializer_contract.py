"""The serializer contract (serializers/base.py), checked once for every provider's serializer.

Each provider is one ``Case``: its fixture trace (``tests/fixtures/<provider>.jsonl``; raw PCM's
is ``raw_pcm.jsonl`` beside this file), the events and field names worth fuzzing, the serializers the
provider's own tests build by hand (unstarted, and in other media formats), its credentials, and
the shape of its REST hang-up URL. Every property runs against each of them, against the same
serializer after the opening messages of the trace, and against the serializer production uses:
built by ``phonewire.telephony.providers`` from the ``CallInfo`` of the trace's start.

* interop: what the simulator's provider client sends parses into the caller's audio, key presses,
  mark echoes, clear acknowledgements and the stop; what the serializer sends (audio, mark, clear,
  DTMF) is what the client expects, with no protocol violation;
* hostile input: arbitrary text, binary frames, JSON objects and mutated fixture messages raise
  nothing but ``RemoteProtocolError``; afterwards the serializer still has a usable wire format
  and packet size, and its hang-up request (if any) still points at the provider's own API.

Provider-specific behaviour (exact message shapes, formats, limits) stays in each provider's file.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phonewire.audio.analysis import tone
from phonewire.exceptions import RemoteProtocolError
from phonewire.frames import InputAudioRawFrame, InputDTMFFrame
from phonewire.serializers.base import (
    ClearAcknowledged,
    FrameSerializer,
    MediaFormat,
    Message,
    PlaybackMarkReached,
    StreamStopped,
)
from phonewire.serializers.exotel import ExotelFrameSerializer
from phonewire.serializers.plivo import PlivoFrameSerializer
from phonewire.serializers.raw_pcm import RawPCMSerializer
from phonewire.serializers.telnyx import TelnyxFrameSerializer
from phonewire.serializers.twilio import TwilioFrameSerializer
from phonewire.serializers.vonage import VonageFrameSerializer
from phonewire.telephony.detect import detect
from phonewire.telephony.providers import get_provider, providers
from phonewire.testing.providers import (
    Clear,
    ExotelClient,
    Mark,
    PlayAudio,
    PlivoClient,
    ProviderClient,
    RawPCMClient,
    SendDTMF,
    TelnyxClient,
    TwilioClient,
    VonageClient,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
RAW_PCM_TRACE = Path(__file__).parent / "raw_pcm.jsonl"
VONAGE_KEY = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    .decode()
)


def _trace(name: str) -> list[Any]:
    """A fixture trace: JSON objects, and bytes for binary frames (the ``_ws_frame`` convention).
    Raw PCM has no provider to record: its trace (``raw_pcm.jsonl`` here) is a start, a jambonz
    first frame and every control message."""
    path = RAW_PCM_TRACE if name == "raw_pcm" else FIXTURES / f"{name}.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [base64.b64decode(r["payload_b64"]) if "_ws_frame" in r else r for r in records]


def wire(message: Any) -> Message:
    return message if isinstance(message, bytes) else json.dumps(message, separators=(",", ":"))


@dataclass(frozen=True)
class Case:
    name: str
    trace: list[Any]
    #: The protocol's events, plus any the provider would never send.
    events: list[str]
    #: Field names worth putting into fuzzed objects.
    keys: list[str]
    #: Unstarted serializers as the provider's own tests build them (the first is the plain one).
    fresh: dict[str, Callable[[], FrameSerializer]]
    #: Credentials for the serializer built from the CallInfo (so that it has a hang-up request).
    credentials: dict[str, Any] = field(default_factory=dict)
    #: What any hang-up request's URL must match, whatever the peer sent.
    hangup_url: str | None = None

    @property
    def json_messages(self) -> list[Any]:
        return [m for m in self.trace if not isinstance(m, bytes)]

    def start_index(self) -> tuple[int, bool]:
        found = get_provider(self.name).recognise(self.trace)
        assert found is not None, f"{self.name}: no start in the fixture trace"
        return found

    def started(self) -> FrameSerializer:
        """The plain serializer after the trace's opening messages, up to and with the start."""
        serializer = next(iter(self.fresh.values()))()
        for message in self.trace[: self.start_index()[0] + 1]:
            serializer.deserialize(wire(message))
        return serializer

    def from_call_info(self) -> FrameSerializer:
        """The serializer production builds: from the CallInfo of the start (telephony/providers.py)."""
        provider = get_provider(self.name)
        index, replay = self.start_index()
        serializer = provider.build_serializer(provider.parse_start(self.trace[index]), **self.credentials)
        if replay:  # the provider's start is also the serializer's first message
            serializer.deserialize(wire(self.trace[index]))
        return serializer

    def serializers(self) -> dict[str, FrameSerializer]:
        built = {name: make() for name, make in self.fresh.items()}
        return {**built, "started": self.started(), "from_call_info": self.from_call_info()}


def _twilio() -> Case:
    trace = _trace("twilio")
    sid, call, account = "MZ7ad72d46820dfaa83cd3e75c111c08de", "CA" + "a1" * 16, "AC" + "b2" * 16
    return Case(
        "twilio",
        trace,
        events=["connected", "start", "media", "dtmf", "mark", "stop", "clear", "x"],
        keys=["event", "sequenceNumber", "media", "dtmf", "mark", "start", "streamSid", "stop"],
        fresh={"fresh": lambda: TwilioFrameSerializer(sid, call, account, "token")},
        credentials={"auth_token": "token"},
        hangup_url=r"https://api\.twilio\.com/2010-04-01/Accounts/AC[0-9a-f]{32}/Calls/CA[0-9a-f]{32}\.json",
    )


def _telnyx() -> Case:
    trace = _trace("telnyx")
    stream_id = next(m for m in trace if m["event"] == "start")["stream_id"]
    return Case(
        "telnyx",
        trace,
        events=["connected", "start", "media", "dtmf", "mark", "error", "stop", "clear"],
        keys=[
            *("event", "stream_id", "sequence_number", "start", "media", "dtmf", "mark", "payload"),
            *("occurred_at", "stop"),
        ],
        fresh={
            "fresh": lambda: TelnyxFrameSerializer(stream_id),
            "l16": lambda: TelnyxFrameSerializer(stream_id, receive_encoding="L16"),
        },
        credentials={"api_key": "KEY"},
        hangup_url=r"https://api\.telnyx\.com/v2/calls/[^/?#]+/actions/hangup",
    )


def _plivo() -> Case:
    trace = _trace("plivo")
    stream_id = trace[0]["start"]["streamId"]
    return Case(
        "plivo",
        trace,
        events=["start", "media", "dtmf", "playedStream", "clearedAudio", "stop", "playAudio"],
        keys=["event", "streamId", "sequenceNumber", "start", "media", "dtmf", "name", "extra_headers"],
        fresh={
            "fresh": lambda: PlivoFrameSerializer(stream_id),
            "l16": lambda: PlivoFrameSerializer(stream_id, media_format=MediaFormat("l16", 16000)),
        },
        credentials={"auth_id": "MAAUTH", "auth_token": "token"},
        hangup_url=r"https://api\.plivo\.com/v1/Account/MAAUTH/Call/[^/?#]+/",
    )


def _exotel() -> Case:
    trace = _trace("exotel")
    sid = trace[1]["stream_sid"]
    return Case(
        "exotel",
        trace,
        events=["connected", "start", "media", "dtmf", "mark", "stop", "clear"],
        keys=["event", "stream_sid", "start", "media", "dtmf", "mark", "stop", "payload", "digit", "name"],
        fresh={"fresh": lambda: ExotelFrameSerializer(sid)},
    )


def _vonage() -> Case:
    return Case(
        "vonage",
        _trace("vonage"),
        events=["websocket:connected", "websocket:dtmf", "websocket:notify", "websocket:cleared"],
        keys=["event", "content-type", "digit", "dtmf", "duration", "payload", "mark", "call_uuid"],
        fresh={"fresh": lambda: VonageFrameSerializer(application_id="app", private_key=VONAGE_KEY)},
        credentials={"application_id": "app", "private_key": VONAGE_KEY},
        hangup_url=r"https://api\.nexmo\.com/v1/calls/[^/?#]+",
    )


def _raw_pcm() -> Case:
    return Case(
        "raw_pcm",
        _trace("raw_pcm"),
        events=["start", "dtmf", "mark", "cleared", "stop", "message"],
        keys=[
            *("event", "digit", "dtmf", "name", "data", "sample_rate", "sampleRate", "mixType", "callSid"),
            "custom_parameters",
        ],
        fresh={"fresh": RawPCMSerializer},
    )


CASES = {case.name: case for case in (_twilio(), _telnyx(), _plivo(), _exotel(), _vonage(), _raw_pcm())}
each_provider = pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))


def test_every_registered_provider_is_covered_here() -> None:
    assert {p.name for p in providers()} <= set(CASES)


@each_provider
def test_the_serializer_built_from_the_call_info_is_the_providers_and_started(case: Case) -> None:
    serializer = case.from_call_info()
    assert serializer.provider == case.name
    assert serializer.input_format.sample_rate > 0 and serializer.packet_policy.packet_bytes > 0
    if case.hangup_url is not None:
        request = serializer.hangup_request()
        assert request is not None and re.fullmatch(case.hangup_url, request.url), request


# --- interop: the serializer and the simulator's provider client understand each other ----------


def _clients() -> list[tuple[ProviderClient, dict[str, Any]]]:
    """Each client, and the serializer arguments that match it where the start cannot say."""
    return [
        (TwilioClient(), {}),
        (TelnyxClient(), {}),
        (TelnyxClient(codec="PCMA", bidirectional_codec="PCMU"), {}),  # our serializer sends PCMU by default
        (TelnyxClient(codec="PCMA"), {"send_encoding": "PCMA"}),
        (TelnyxClient(codec="L16"), {"send_encoding": "L16"}),
        (PlivoClient(custom_parameters={"userId": "42"}), {}),
        (PlivoClient(content_type="audio/x-l16;rate=16000"), {}),
        (ExotelClient(), {}),
        (ExotelClient(sample_rate=24000), {}),
        (VonageClient(), {}),
        (VonageClient(sample_rate=8000), {}),
        (RawPCMClient(custom_parameters={"k": "v"}), {}),
    ]


def _interop_id(case: Any) -> str:
    if isinstance(case, dict):
        return "-".join(f"{k}={v}" for k, v in case.items())
    fmt = case.wire_format
    codecs = "/".join(dict.fromkeys((getattr(case, "codec", fmt.encoding), getattr(case, "bidirectional_codec", ""))))
    return f"{case.name}-{codecs.strip('/')}-{fmt.sample_rate}"


def _close(pcm: bytes, expected: bytes) -> bool:
    """Equal up to G.711 quantisation (a few percent of full scale at most)."""
    a, b = (np.frombuffer(x, "<i2").astype(np.int32) for x in (pcm, expected))
    return len(a) == len(b) and int(np.abs(a - b).max(initial=0)) < 1500


def test_every_provider_has_an_interop_client() -> None:
    assert {client.name for client, _ in _clients()} == set(CASES)


@pytest.mark.parametrize(("client", "serializer_kwargs"), _clients(), ids=_interop_id)
def test_our_server_detects_each_client_and_they_understand_each_other(
    client: ProviderClient, serializer_kwargs: dict[str, Any]
) -> None:
    fmt = client.wire_format
    pcm = tone(440, client.packet_ms / 1000, fmt.sample_rate)
    media = client.media_message(client.encode(pcm))
    detection = detect([*client.opening_messages(), media])
    assert detection is not None and detection.info.provider == client.name
    assert detection.info.call_id == client.call_id and detection.info.media_format == fmt
    if client.name in ("telnyx", "plivo"):
        assert detection.info.custom_parameters == getattr(client, "custom_parameters", {})
    serializer = detection.make_serializer(detection.info, **serializer_kwargs)

    # client -> server: the caller's audio, a key press, playback acknowledgements, the end
    frames = [f for m in (*detection.pending, client.dtmf_message("7")) for f in serializer.deserialize(m)]
    audio = [f for f in frames if isinstance(f, InputAudioRawFrame)]
    assert b"".join(f.audio for f in audio) == client.decode(client.encode(pcm))
    assert all(f.sample_rate == fmt.sample_rate for f in audio)
    assert [f.button.value for f in frames if isinstance(f, InputDTMFFrame)] == ["7"]
    assert serializer.deserialize(client.mark_echo("pw-1-2")) == [PlaybackMarkReached("pw-1-2")]
    ack = client.clear_ack()
    if ack is not None:
        assert serializer.deserialize(ack) == [ClearAcknowledged()]
    stop = client.stop_message()
    if stop is not None:
        assert any(isinstance(e, StreamStopped) for e in serializer.deserialize(stop))

    # server -> client: bot audio in the server's packet size, a mark, a clear
    packet = pcm[: serializer.packet_policy.packet_bytes * 2 // fmt.bytes_per_sample]
    [play] = [c for m in serializer.encode_audio(packet) for c in client.parse_server_message(m)]
    assert isinstance(play, PlayAudio) and _close(play.pcm, packet)
    assert [c for m in serializer.encode_mark("pw-1-3") for c in client.parse_server_message(m)] == [Mark("pw-1-3")]
    assert [c for m in serializer.encode_clear() for c in client.parse_server_message(m)] == [Clear()]
    if serializer.supports_dtmf_out:
        assert [c for m in serializer.encode_dtmf("12#") for c in client.parse_server_message(m)] == [SendDTMF("12#")]


# --- hostile input: nothing but RemoteProtocolError may escape ----------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def objects(case: Case) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the protocol's field names, with one of its events or whatever ``event`` they drew."""
    body = st.dictionaries(st.sampled_from(case.keys) | st.text(max_size=10), JSON_VALUES, max_size=6)
    event = st.none() | st.sampled_from(case.events)
    return st.tuples(body, event).map(lambda pair: pair[0] if pair[1] is None else {**pair[0], "event": pair[1]})


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, case: Case) -> Any:
    """A fixture message with 1-3 values (the whole message included) replaced or deleted."""
    msg = json.loads(json.dumps(draw(st.sampled_from(case.json_messages))))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(msg)))
        if not path:
            msg = draw(JSON_VALUES)
            continue
        parent = msg
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return msg


def survives(case: Case, messages: list[Message]) -> None:
    """Feed ``messages`` to each of the case's serializers: each either returns a list or raises
    RemoteProtocolError; afterwards each still has a wire format, a packet size and a safe hang-up."""
    for name, serializer in case.serializers().items():
        for message in messages:
            try:
                result = serializer.deserialize(message)
            except RemoteProtocolError:
                continue
            assert isinstance(result, list), (name, result)
        assert serializer.input_format.sample_rate > 0 and serializer.packet_policy.packet_bytes > 0, name
        request = serializer.hangup_request()
        if request is not None:
            assert case.hangup_url is not None and re.fullmatch(case.hangup_url, request.url), (name, request)


def _replaced(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    obj = json.loads(json.dumps(obj))
    parent = obj
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return obj


#: One value of each JSON type, the unhashable ones included.
EVERY_TYPE: list[Any] = [None, True, 0, 1.5, "", "x", [], [1], {}, {"a": 1}]


@each_provider
def test_every_value_of_every_fixture_message_may_be_of_any_type(case: Case) -> None:
    # Exhaustive where the fuzzing samples: each value of each message, in turn, of each JSON type.
    for message in case.json_messages:
        for path in _paths(message):
            survives(case, [wire(_replaced(message, path, value)) for value in EVERY_TYPE])


def fuzz(**kwargs: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Each example is a list of up to four messages fed to every serializer of the case, so 200
    examples put more messages through each serializer than the 400 single ones of the copies."""
    return settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], **kwargs)


@each_provider
@fuzz(max_examples=200)
@given(texts=st.lists(st.text(), min_size=1, max_size=3))
def test_arbitrary_text_raises_nothing_but_protocol_errors(case: Case, texts: list[str]) -> None:
    survives(case, list(texts))


@each_provider
@fuzz(max_examples=100)
@given(frames=st.lists(st.binary(max_size=2000), min_size=1, max_size=3))
def test_arbitrary_binary_frames_raise_nothing_but_protocol_errors(case: Case, frames: list[bytes]) -> None:
    survives(case, list(frames))


@each_provider
@fuzz(max_examples=200)
@given(data=st.data())
def test_arbitrary_json_objects_raise_nothing_but_protocol_errors(case: Case, data: st.DataObject) -> None:
    drawn = data.draw(st.lists(objects(case), min_size=1, max_size=4))
    survives(case, [wire(obj) for obj in drawn])


@each_provider
@fuzz(max_examples=200)
@given(data=st.data())
def test_mutated_fixture_messages_raise_nothing_but_protocol_errors(case: Case, data: st.DataObject) -> None:
    drawn = data.draw(st.lists(mutated(case), min_size=1, max_size=4))
    survives(case, [json.dumps(m) for m in drawn])
