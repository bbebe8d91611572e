"""chat_stream, sans-I/O: request building and chunk assembly, with every compat quirk of §1.7."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from phonewire.services.openai.chat_stream import (
    ChatStreamAssembler,
    ChatStreamError,
    Compat,
    build_request,
    collect,
    compat_for,
    usage_tokens,
)
from phonewire.testing.fakes import validate_chat_request


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": choices, **extra}


def call_delta(index: int | None = None, id: str | None = None, name: str | None = None, args: str | None = None):
    entry: dict[str, Any] = {}
    if index is not None:
        entry["index"] = index
    if id is not None:
        entry.update(id=id, type="function")
    function = {k: v for k, v in (("name", name), ("arguments", args)) if v is not None}
    if function:
        entry["function"] = function
    return {"tool_calls": [entry]}


def test_openai_parallel_calls_assemble_by_index() -> None:
    chunks = [
        chunk({"role": "assistant", "content": None}),
        chunk(call_delta(0, "call_A", "lookup_order", "")),
        chunk(call_delta(0, args='{"order_')),
        chunk(call_delta(0, args='id":"42"}')),
        chunk(call_delta(1, "call_B", "get_time", "{}")),
        chunk({}, "tool_calls"),
    ]
    text, calls, asm = collect(chunks)
    assert text == "" and asm.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.parse_arguments()[0]) for c in calls] == [
        ("call_A", "lookup_order", {"order_id": "42"}),
        ("call_B", "get_time", {}),
    ]


def test_gemini_calls_without_index_whole_in_one_delta_and_finish_stop() -> None:
    both = {"tool_calls": [
        {"id": "g1", "type": "function", "function": {"name": "a", "arguments": '{"x":1}'}},
        {"id": "g2", "type": "function", "function": {"name": "b", "arguments": "{}"},
         "extra_content": {"google": {"thought_signature": "sig=="}}},
    ]}  # fmt: skip
    _, calls, asm = collect([chunk(both), chunk(call_delta(None, "g3", "c", "{}")), chunk({}, "stop")])
    assert [c.id for c in calls] == ["g1", "g2", "g3"] and asm.finish_reason == "stop"
    assert calls[1].extra == {"extra_content": {"google": {"thought_signature": "sig=="}}}
    assert calls[1].as_message_call()["extra_content"] == {"google": {"thought_signature": "sig=="}}


def test_two_calls_sharing_index_zero_split_on_a_new_id() -> None:
    _, calls, _ = collect([chunk(call_delta(0, "r1", "a", '{"n":1}')), chunk(call_delta(0, "r2", "b", '{"n":2}'))])
    assert [(c.name, c.arguments_raw) for c in calls] == [("a", '{"n":1}'), ("b", '{"n":2}')]


def test_an_id_repeated_on_every_fragment_is_one_call() -> None:
    _, calls, _ = collect([chunk(call_delta(0, "same", "a", '{"k":')), chunk(call_delta(0, "same", None, "1}"))])
    assert len(calls) == 1 and calls[0].parse_arguments() == ({"k": 1}, None)


def test_groq_empty_tool_calls_and_x_groq_usage() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    chunks = [chunk({"content": "Hi", "tool_calls": []}), chunk({}, "stop", x_groq={"id": "q", "usage": usage})]
    text, calls, asm = collect(chunks)
    assert text == "Hi" and calls == [] and asm.usage == usage


def test_usage_in_every_chunk_keeps_the_last_and_details_are_read() -> None:
    chunks = [
        chunk({"content": "a"}, usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}),
        chunk({"content": "b"}, usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
        chunk(None, usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5,
                           "prompt_tokens_details": {"cached_tokens": 1},
                           "completion_tokens_details": {"reasoning_tokens": 0}}),
    ]  # fmt: skip
    _, _, asm = collect(chunks)
    assert asm.usage is not None
    assert usage_tokens(asm.usage) == {
        "prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5,
        "cache_read_input_tokens": 1, "reasoning_tokens": 0,
    }  # fmt: skip


def test_content_and_tool_calls_in_one_delta_both_count_and_reasoning_is_not_spoken() -> None:
    delta = {"content": "Let me check.", "reasoning_content": "thinking...", **call_delta(0, "c1", "f", "{}")}
    text, calls, _ = collect([chunk(delta), chunk({}, "tool_calls")])
    assert text == "Let me check." and [c.name for c in calls] == ["f"]


def test_error_chunks_raise_top_level_vllm_and_nested() -> None:
    for bad in ({"object": "error", "message": "model overloaded", "code": 503}, {"error": {"message": "boom"}}):
        asm = ChatStreamAssembler()
        try:
            asm.feed(bad)
        except ChatStreamError as exc:
            assert str(exc) in ("model overloaded", "boom")
        else:
            raise AssertionError("no error raised")


def test_missing_id_gets_one_and_invalid_arguments_are_reported_not_raised() -> None:
    _, calls, _ = collect([chunk(call_delta(0, None, "f", "{oops")), chunk(call_delta(1, None, "g", "[1]"))])
    assert all(c.id.startswith("call_") for c in calls) and calls[0].id != calls[1].id
    assert calls[0].parse_arguments()[0] is None and "invalid JSON" in (calls[0].parse_arguments()[1] or "")
    assert "JSON object" in (calls[1].parse_arguments()[1] or "")


def test_a_second_choice_is_ignored() -> None:
    two = {"choices": [{"index": 0, "delta": {"content": "A"}}, {"index": 1, "delta": {"content": "B"}}]}
    assert ChatStreamAssembler().feed(two) == "A"


# --- arbitrary splits ---------------------------------------------------------------------

names = st.from_regex(r"[a-z_]{1,10}", fullmatch=True)
json_args = st.dictionaries(names, st.one_of(st.integers(), st.text(max_size=12), st.booleans()), max_size=4)


def _cuts(draw: st.DrawFn, text: str) -> list[str]:
    points = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=6))) if len(text) > 1 else []
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a] or [""]


@st.composite
def streams(draw: st.DrawFn) -> tuple[str, list[tuple[str, str, dict[str, Any]]], list[dict[str, Any]]]:
    text = draw(st.text(max_size=30))
    calls = [(f"id{i}", draw(names), draw(json_args)) for i in range(draw(st.integers(0, 3)))]
    with_index = draw(st.booleans())
    entries: list[dict[str, Any]] = []
    for piece in _cuts(draw, text) if text else []:
        entries.append({"content": piece})
    for i, (cid, name, args) in enumerate(calls):
        pieces = _cuts(draw, json.dumps(args))
        for j, piece in enumerate(pieces):
            entry: dict[str, Any] = {"function": {"arguments": piece}}
            if with_index:
                entry["index"] = i
            if j == 0 or not with_index:  # without an index a fragment must say whose it is
                entry["id"] = cid
            if j == 0:
                entry["function"]["name"] = name
            entries.append({"tool_calls": [entry]})
    # arbitrary chunk boundaries: group consecutive deltas of one kind into one delta
    chunks: list[dict[str, Any]] = []
    for entry in entries:
        if chunks and draw(st.booleans()) and _mergeable(chunks[-1]["choices"][0]["delta"], entry):
            delta = chunks[-1]["choices"][0]["delta"]
            if "content" in entry:
                delta["content"] = delta.get("content", "") + entry["content"]
            else:
                delta.setdefault("tool_calls", []).extend(entry["tool_calls"])
        else:
            chunks.append(chunk(dict(entry)))
    chunks.append(chunk({}, draw(st.sampled_from(["stop", "tool_calls"]))))
    return text, calls, chunks


def _mergeable(delta: dict[str, Any], entry: dict[str, Any]) -> bool:
    if "content" in entry:
        return "tool_calls" not in delta
    if "tool_calls" not in delta:
        return False
    new = entry["tool_calls"][0]
    return "index" in new and all("index" in e and e["index"] != new["index"] for e in delta["tool_calls"])


@given(streams())
def test_arbitrary_splits_and_chunk_boundaries_assemble_to_the_same_reply(case: Any) -> None:
    text, calls, chunks = case
    got_text, got_calls, _ = collect(chunks)
    assert got_text == text
    assert [(c.id, c.name, c.parse_arguments()[0]) for c in got_calls] == calls


# --- requests ----------------------------------------------------------------------------


def test_build_request_validates_against_the_sdk_and_routes_unknown_params_to_extra_body() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    request = build_request(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        tools=tools,
        tool_choice="auto",
        params={"temperature": 0.5, "top_k": 40, "seed": None, "extra": {"min_p": 0.1}},
        system_instruction="Be kind.",
    )
    extra = request.pop("extra_body")
    assert extra == {"top_k": 40, "min_p": 0.1}
    validate_chat_request(request)
    assert request["messages"][0] == {"role": "system", "content": "Be kind."} and "seed" not in request


def test_no_tools_means_no_tool_choice_and_an_existing_system_message_wins() -> None:
    request = build_request(
        model="m", messages=[{"role": "system", "content": "mine"}], tool_choice="auto", system_instruction="x"
    )
    assert "tools" not in request and "tool_choice" not in request
    assert [m["content"] for m in request["messages"]] == ["mine"]


def test_compat_quirks_in_requests() -> None:
    assert compat_for("https://api.anthropic.com/v1/").max_temperature == 1.0
    assert compat_for(None).name == "openai" and compat_for("http://localhost:11434/v1").name == "compatible"
    capped = build_request(model="claude", messages=[], params={"temperature": 1.7}, compat=compat_for(
        "https://api.anthropic.com/v1/"))  # fmt: skip
    assert capped["temperature"] == 1.0
    bare = build_request(model="m", messages=[], compat=Compat(supports_stream_options=False))
    assert "stream_options" not in bare


def test_gemini_thought_signatures_go_back_on_the_assistant_tool_calls() -> None:
    call = {"id": "g1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [{"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "g1", "content": "ok"}]  # fmt: skip
    signature = {"google": {"thought_signature": "sig=="}}
    request = build_request(model="gemini", messages=messages, extra_content={"g1": signature})
    assert request["messages"][0]["tool_calls"][0]["extra_content"] == signature
    assert "extra_content" not in call  # the context's own message is not modified
