"""CartesiaProtocol: requests match the SDK's request types; the parser never raises."""

from __future__ import annotations

import json

from cartesia.types.generation_request import GenerationRequest
from cartesia.types.websocket_client_event import CancelContextRequest
from hypothesis import given
from hypothesis import strategies as st

from phonewire.services.cartesia.protocol import CartesiaProtocol, parse_message
from phonewire.services.websocket_tts_protocol import AudioChunk, ContextDone, ServiceError, WordBuffer, WordTimes


def _protocol(encoding: str = "mulaw") -> CartesiaProtocol:
    return CartesiaProtocol(api_key="sk-secret", voice_id="v1", model="sonic-3", sample_rate=8000, encoding=encoding)


def test_requests_are_what_the_sdk_types_allow() -> None:
    p = _protocol()
    for raw in [*p.send_text("c1", "Hello there "), *p.flush("c1")]:
        request = GenerationRequest.model_validate(json.loads(raw))
        assert request.output_format.encoding == "pcm_mulaw" and request.output_format.sample_rate == 8000
        assert request.add_timestamps is True
    assert json.loads(p.send_text("c1", "x ")[0])["continue"] is True
    assert json.loads(p.flush("c1")[0])["continue"] is False
    CancelContextRequest.model_validate(json.loads(p.cancel("c1")[0]))


def test_the_key_stays_out_of_the_url_and_the_repr() -> None:
    p = _protocol()
    assert "sk-secret" not in p.url() and "sk-secret" not in repr(p)
    assert p.headers()["X-API-Key"] == "sk-secret"


def test_messages_parse_to_events() -> None:
    chunk = {"type": "chunk", "context_id": "c", "data": "/38=", "done": False, "status_code": 206, "step_time": 1}
    assert parse_message(json.dumps(chunk)) == [AudioChunk("c", b"\xff\x7f")]
    ts = {"words": ["Hi", "there"], "start": [0.0, 0.25], "end": [0.2, 0.5]}
    stamps = {"type": "timestamps", "context_id": "c", "done": False, "status_code": 206, "word_timestamps": ts}
    assert parse_message(json.dumps(stamps)) == [WordTimes("c", (("Hi", 0.0), ("there", 250.0)))]
    assert parse_message('{"type":"done","context_id":"c","done":true,"status_code":200}') == [ContextDone("c")]
    error = parse_message('{"type":"error","context_id":"c","done":true,"title":"Bad","message":"nope"}')
    assert error == [ServiceError("c", "Bad: nope", None)]


@given(
    st.one_of(
        st.text(),
        st.binary(),
        st.dictionaries(
            st.text(),
            st.recursive(
                st.none() | st.booleans() | st.floats() | st.text(),
                lambda c: st.lists(c) | st.dictionaries(st.text(), c),
            ),
        ).map(json.dumps),
    )
)
def test_the_parser_never_raises(message: str | bytes) -> None:
    assert isinstance(parse_message(message), list)


@given(st.lists(st.text(max_size=6), max_size=30))
def test_the_word_buffer_releases_whole_words_and_loses_nothing(tokens: list[str]) -> None:
    buffer = WordBuffer(first_words=3)
    out = "".join(buffer.push(t) for t in tokens)
    assert out == "" or out[-1].isspace()
    assert out + buffer.flush() == "".join(tokens)
