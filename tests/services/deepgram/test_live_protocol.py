"""The sans-I/O Deepgram protocol: URLs, auth, parsing (property-tested: it never raises), the ring."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonewire.services.deepgram.audio_ring import AudioRing
from phonewire.services.deepgram.live_protocol import (
    ErrorEvent,
    LiveOptions,
    MetadataEvent,
    ProtocolErrorEvent,
    TranscriptEvent,
    UtteranceEndEvent,
    auth_headers,
    describe_close,
    listen_url,
    parse_message,
)
from phonewire.testing.fakes.deepgram_script import metadata_message, results_message


def test_the_url_carries_every_documented_parameter_as_strings() -> None:
    options = LiveOptions(extra={"keyterm": ["order", "refund"], "numerals": True}).with_audio("mulaw", 8000)
    url = listen_url("ws://127.0.0.1:1234", options)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("ws", "127.0.0.1:1234", "/v1/listen")
    query = parse_qsl(parts.query)
    assert dict(query) | {"keyterm": "x"} == {
        "model": "nova-3", "language": "en-US", "encoding": "mulaw", "sample_rate": "8000", "channels": "1",
        "interim_results": "true", "punctuate": "true", "smart_format": "true", "endpointing": "300",
        "utterance_end_ms": "1000", "vad_events": "false", "keyterm": "x", "numerals": "true",
    }  # fmt: skip
    assert [v for k, v in query if k == "keyterm"] == ["order", "refund"]


def test_base_urls_map_to_websocket_schemes() -> None:
    options = LiveOptions()
    assert listen_url(None, options).startswith("wss://api.deepgram.com/v1/listen?")
    assert listen_url("https://api.eu.deepgram.com/", options).startswith("wss://api.eu.deepgram.com/v1/listen?")
    assert listen_url("ws://h:1/v1/listen", options).startswith("ws://h:1/v1/listen?")
    with pytest.raises(ValueError):
        listen_url("ftp://h", options)


def test_deepgrams_rules_are_enforced_before_connecting() -> None:
    with pytest.raises(ValueError, match="interim_results"):
        LiveOptions(interim_results=False).query()
    with pytest.raises(ValueError, match="encoding"):
        LiveOptions(encoding="wav").query()
    assert ("endpointing", "false") in LiveOptions(endpointing=False).query()


def test_auth_is_token_for_keys_and_bearer_for_jwts() -> None:
    assert auth_headers("abc") == {"Authorization": "Token abc"}
    assert auth_headers("a.b.c") == {"Authorization": "Bearer a.b.c"}


def test_results_parse_to_a_transcript_event() -> None:
    words = [{"word": "hi", "start": 0.1, "end": 0.3, "confidence": 0.9, "punctuated_word": "Hi"}]
    msg = results_message(" Hi ", words, 0.9, 1.0, 0.5, is_final=True, speech_final=False, from_finalize=True,
                          request_id="r")  # fmt: skip
    event = parse_message(json.dumps(msg))
    assert isinstance(event, TranscriptEvent)
    assert (event.transcript, event.is_final, event.from_finalize, event.end) == ("Hi", True, True, 1.5)
    assert event.words[0].punctuated_word == "Hi"


def test_other_messages_parse() -> None:
    assert parse_message(json.dumps(metadata_message("r", 2.0))) == MetadataEvent("r", 2.0)
    utterance_end = {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 1.2}
    assert parse_message(json.dumps(utterance_end)) == UtteranceEndEvent(1.2)
    error = {"type": "Error", "variant": "SchemaError", "description": "bad"}
    assert parse_message(json.dumps(error)) == ErrorEvent("SchemaError", "bad")
    assert isinstance(parse_message('{"type": "Nope"}'), ProtocolErrorEvent)
    assert isinstance(parse_message('{"type": "Results", "channel": 3}'), ProtocolErrorEvent)


def test_close_reasons_are_explained() -> None:
    assert "NET-0001" in describe_close(1011, "NET-0001 timeout") and "KeepAlive" in describe_close(1011, "NET-0001")
    assert describe_close(None, None) == "close None"


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
kinds = st.sampled_from(["Results", "Metadata", "UtteranceEnd", "SpeechStarted", "Error", "x"])


@given(kind=kinds, body=st.dictionaries(st.sampled_from(["channel", "start", "duration", "timestamp",
       "last_word_end", "is_final", "request_id", "description"]), json_values, max_size=6))  # fmt: skip
def test_the_parser_never_raises_on_any_json(kind: str, body: dict[str, object]) -> None:
    parse_message(json.dumps({"type": kind, **body}))


@given(st.binary(max_size=64))
def test_the_parser_never_raises_on_any_bytes(data: bytes) -> None:
    parse_message(data)


@given(st.lists(st.binary(min_size=1, max_size=50), max_size=60), st.integers(0, 3000))
def test_the_ring_keeps_the_newest_bytes_and_replays_from_the_final_mark(chunks: list[bytes], mark: int) -> None:
    ring = AudioRing(400)
    for chunk in chunks:
        ring.append(chunk)
    data = b"".join(chunks)
    assert ring.end == len(data) and ring.end - ring.start <= 400
    offset, held = ring.read(0, 10_000)
    assert offset == ring.start and held == data[ring.start :]
    ring.mark_finalized(mark)
    replay = ring.replay_from()
    assert ring.start <= replay <= ring.end
    assert ring.lost_bytes == max(0, ring.start - min(mark, ring.end))
