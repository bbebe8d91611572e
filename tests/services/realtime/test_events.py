"""Realtime events: our client events and the fake's server events against the SDK's types,
the URL derived as the SDK derives it, the truncation rule, and a parser that never raises."""

from __future__ import annotations

import json

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonewire.services.openai.realtime import events as ev
from phonewire.services.openai.realtime.connection import realtime_url
from phonewire.services.openai.realtime.ledger import ReplyLedger, truncate_point
from phonewire.testing.fakes.realtime_session import RealtimeReply, RealtimeSessionState, RealtimeToolCall
from phonewire.testing.fakes.realtime_validate import validate_realtime_client_event, validate_realtime_server_event

TOOL = {"type": "function", "function": {"name": "lookup", "description": "d", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    "text",
    [
        ev.session_update(ev.RealtimeSessionConfig(instructions="Hi", tools=[TOOL])),
        ev.session_update(
            ev.RealtimeSessionConfig(input_format="pcm", output_format="pcm", turn_detection="semantic_vad")
        ),
        ev.session_update(ev.RealtimeSessionConfig(turn_detection=None, transcription_model=None, voice=None)),
        ev.audio_append(b"\xff" * 160),
        ev.input_audio_commit(),
        ev.input_audio_clear(),
        ev.response_create(),
        ev.response_cancel("resp_1"),
        ev.truncate("item_1", 1480),
        ev.function_call_output("call_1", {"status": "shipped"}),
        ev.conversation_item_create(ev.message_item("assistant", "Hello")),
        ev.conversation_item_create(ev.message_item("user", "Hi")),
    ],
)
def test_every_client_event_we_build_is_one_the_sdk_types_allow(text: str) -> None:
    validate_realtime_client_event(json.loads(text))


def test_a_chat_completions_tool_is_flattened_to_the_ga_shape() -> None:
    session = ev.RealtimeSessionConfig(tools=[TOOL]).session()
    assert session["tools"] == [
        {"type": "function", "name": "lookup", "description": "d", "parameters": {"type": "object"}}
    ]
    assert session["type"] == "realtime" and "input_audio_format" not in session


def test_the_fakes_server_events_match_the_sdk_types() -> None:
    state = RealtimeSessionState(transcripts=["hi"], chunk_ms=100)
    events = state.created()
    config = ev.RealtimeSessionConfig(tools=[TOOL])
    events += state.handle(json.loads(ev.session_update(config)), lambda: RealtimeReply("Hello there"))
    events += state.handle(json.loads(ev.response_create()), lambda: RealtimeReply("Hello there friend"))
    while state.response is not None:
        events += state.next_delta()
    item = next(iter(state.items))
    events += state.handle(json.loads(ev.truncate(item, 10)), lambda: RealtimeReply())
    events += state.handle(json.loads(ev.truncate(item, 10_000)), lambda: RealtimeReply())
    tool = RealtimeReply(tool_calls=(RealtimeToolCall("lookup", {"id": "1"}),))
    events += state.handle(json.loads(ev.response_create()), lambda: tool)
    events += state.handle(json.loads(ev.response_cancel()), lambda: tool)
    for event in events:
        validate_realtime_server_event(event)
    errors = [e["error"] for e in events if e["type"] == "error"]
    assert any("is already shorter than 10000ms" in e["message"] for e in errors)
    assert any(e["code"] == "response_cancel_not_active" for e in errors)


@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:8123/v1", "https://api.openai.com/v1", "https://proxy.example/openai/v1/"]
)
def test_the_websocket_url_is_derived_from_base_url_as_the_sdk_derives_it(base: str) -> None:
    client = openai.AsyncOpenAI(api_key="k", base_url=base)
    sdk = client.realtime.connect(model="gpt-realtime")._prepare_url().copy_merge_params({"model": "gpt-realtime"})
    assert realtime_url(base, "gpt-realtime") == str(sdk)


def test_truncation_is_whole_clamped_and_per_item() -> None:
    assert truncate_point(1480.9, 2000) == 1480
    assert truncate_point(-5, 2000) == 0
    assert truncate_point(9999, 1234.5) == 1234
    assert truncate_point(float("nan"), 100) == 0
    ledger = ReplyLedger("resp_1", "pcmu")
    ledger.add_audio("a", 8 * 1000)  # 1000 ms
    ledger.add_audio("b", 8 * 500)  # 500 ms, starting at 1000
    assert ledger.truncations(700.4) == [("a", 700), ("b", 0)]
    assert ledger.truncations(1200) == [("b", 200)]
    assert ledger.truncations(5000) == []


@given(
    st.one_of(
        st.text(),
        st.binary(),
        st.builds(
            json.dumps,
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(),
                lambda c: st.lists(c) | st.dictionaries(st.text(), c),
            ),
        ),
    )
)
def test_the_parser_never_raises(data: str | bytes) -> None:
    event = ev.parse_server_event(data)
    assert isinstance(event, ev.ServerEvent | ev.BadEvent)
    if isinstance(event, ev.ServerEvent):
        event.audio()
        event.error_code()
        event.error_message()


@given(st.binary(max_size=2000))
def test_gemini_messages_never_raise(data: bytes) -> None:
    from phonewire.services.google.live_events import parse_server_message

    parse_server_message(data)
