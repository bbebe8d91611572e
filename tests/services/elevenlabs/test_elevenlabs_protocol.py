"""ElevenLabsProtocol: every message is an SDK request type, the key stays in the header, the
alignment turns into word start times across message boundaries, the parser never raises."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonewire.services.elevenlabs.protocol import ElevenLabsProtocol, output_format
from phonewire.services.websocket_tts_protocol import AudioChunk, ContextDone, ServiceError, WordTimes
from phonewire.testing.fakes.elevenlabs_validate import client_message_type, validate_client_message


def _protocol(**kw: Any) -> ElevenLabsProtocol:
    args: dict[str, Any] = {"sample_rate": 8000, "encoding": "mulaw", "voice_id": "v 1", "model": "eleven_flash_v2_5"}
    return ElevenLabsProtocol(api_key="sk-secret", **{**args, **kw})


def _audio(cid: str, ms: int, chars: str = "", starts: list[int] | None = None, **extra: Any) -> str:
    msg: dict[str, Any] = {"audio": base64.b64encode(b"\xff" * (8 * ms)).decode(), "contextId": cid, **extra}
    if chars:
        starts = starts if starts is not None else [10 * i for i in range(len(chars))]
        msg["alignment"] = {"chars": list(chars), "charStartTimesMs": starts, "charDurationsMs": [10] * len(chars)}
    return json.dumps(msg)


def test_every_message_is_an_sdk_request_type() -> None:
    p = _protocol(voice_settings={"stability": 0.5, "speed": 1.1}, generation_config={"chunk_length_schedule": [50]})
    sent = [
        *p.open_context("c1"),
        *p.send_text("c1", "Hello there "),
        *p.keepalive(),
        *p.send_text("c1", "friend."),
        *p.flush("c1"),
        *p.goodbye(),
    ]
    kinds = [client_message_type(json.loads(m)) for m in sent]
    assert kinds == [
        "InitialiseContext",
        "SendTextMulti",
        "SendTextMulti",  # the connection's keep-alive: {"text": ""}
        "KeepContextAlive",
        "SendTextMulti",
        "FlushContext",
        "CloseContext",
        "CloseSocket",
    ]
    for m in sent:
        validate_client_message(json.loads(m))
    init = json.loads(sent[0])
    assert init["text"] == " " and init["voice_settings"]["speed"] == 1.1
    assert json.loads(sent[4])["text"] == "friend. "  # inputs end with one space


def test_the_url_carries_the_documented_query_and_the_key_only_the_header() -> None:
    p = _protocol(inactivity_timeout=60, query={"auto_mode": True, "language_code": "en"})
    url = p.url()
    assert url.startswith("wss://api.elevenlabs.io/v1/text-to-speech/v%201/multi-stream-input?")
    assert "model_id=eleven_flash_v2_5" in url and "output_format=ulaw_8000" in url
    assert "inactivity_timeout=60" in url and "auto_mode=true" in url
    assert "sk-secret" not in url and "sk-secret" not in repr(p)
    assert p.headers() == {"xi-api-key": "sk-secret"}


def test_output_formats() -> None:
    assert output_format("mulaw", 8000) == "ulaw_8000"
    assert output_format("l16", 16000) == "pcm_16000" and output_format("l16", 24000) == "pcm_24000"
    with pytest.raises(ValueError):
        output_format("mulaw", 16000)
    with pytest.raises(ValueError):
        output_format("l16", 48000)


def test_a_context_is_closed_once_and_never_flushed_unopened() -> None:
    p = _protocol()
    assert p.flush("never-opened") == [] and p.cancel("never-opened") == []
    p.open_context("a")
    assert [json.loads(m) for m in p.cancel("a")] == [{"context_id": "a", "close_context": True}]
    assert p.cancel("a") == [] and p.flush("a") == []
    p.open_context("b")
    assert len(p.flush("b")) == 2
    assert p.cancel("b") == []  # closing already: it finishes its flush whatever is sent
    assert [json.loads(m) for m in p.keepalive()] == [{"text": ""}]  # no closed context kept alive


def test_alignment_becomes_word_starts_across_messages() -> None:
    p = _protocol()
    p.open_context("c")
    first = p.parse(_audio("c", 100, "Hi the"))  # "the" straddles the two messages
    assert first == [AudioChunk("c", b"\xff" * 800), WordTimes("c", (("Hi", 0.0),))]
    second = p.parse(_audio("c", 50, "re pal", [0, 10, 20, 30, 40, 45]))
    assert second[1] == WordTimes("c", (("there", 30.0),))  # started at 30 ms in the first message
    done = p.parse('{"isFinal": true, "contextId": "c"}')
    assert done == [WordTimes("c", (("pal", 100.0 + 30),)), ContextDone("c")]


def test_the_normalized_alignment_is_used_with_a_pronunciation_dictionary() -> None:
    alignment = {"chars": ["a", " "], "charStartTimesMs": [0, 5], "charDurationsMs": [5, 5]}
    normalized = {"chars": ["b", " "], "charStartTimesMs": [0, 5], "charDurationsMs": [5, 5]}
    msg = json.dumps({"audio": "/w==", "contextId": "c", "alignment": alignment, "normalizedAlignment": normalized})
    plain, dictionary = _protocol(), _protocol(pronunciation_dictionary_locators=[{"pronunciation_dictionary_id": "d"}])
    for p in (plain, dictionary):
        p.open_context("c")
    assert plain.parse(msg)[1] == WordTimes("c", (("a", 0.0),))
    assert dictionary.parse(msg)[1] == WordTimes("c", (("b", 0.0),))


def test_errors_parse() -> None:
    p = _protocol()
    error = p.parse('{"message": "Maximum simultaneous contexts", "error": "max_active_conversations", "code": 1008}')
    assert error == [
        ServiceError(None, "max_active_conversations: Maximum simultaneous contexts", "max_active_conversations")
    ]
    assert p.parse("not json") == [ServiceError(None, "a message that is not JSON", "bad_message")]
    assert p.parse('{"audio": "!!", "contextId": "c"}')[0].code == "bad_message"


@given(st.lists(st.sampled_from(["Hi", "there", "my", "good", "friend.", "A"]), min_size=1, max_size=12), st.data())
def test_words_are_the_same_however_the_alignment_is_split(words: list[str], data: st.DataObject) -> None:
    text = " ".join(words) + " "
    cuts = sorted(data.draw(st.sets(st.integers(1, len(text) - 1), max_size=5)))
    bounds = [0, *cuts, len(text)]
    p = _protocol()
    p.open_context("c")
    found: list[tuple[str, float]] = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        # each message: 10 ms a character, times relative to the message's own audio
        events = p.parse(_audio("c", 10 * (hi - lo), text[lo:hi], [10 * i for i in range(hi - lo)]))
        found += [w for e in events if isinstance(e, WordTimes) for w in e.words]
    found += [w for e in p.parse('{"isFinal":true,"contextId":"c"}') if isinstance(e, WordTimes) for w in e.words]
    expected, pos = [], 0
    for w in words:
        expected.append((w, 10.0 * pos))
        pos += len(w) + 1
    assert found == expected


@given(
    st.one_of(
        st.text(),
        st.binary(),
        st.dictionaries(
            st.sampled_from(["audio", "contextId", "isFinal", "alignment", "normalizedAlignment", "error", "message"]),
            st.recursive(
                st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
                lambda c: st.lists(c) | st.dictionaries(st.sampled_from(["chars", "charStartTimesMs", "x"]), c),
            ),
        ).map(json.dumps),
    )
)
def test_the_parser_never_raises(message: str | bytes) -> None:
    p = _protocol()
    p.open_context("c")
    assert isinstance(p.parse(message), list)
