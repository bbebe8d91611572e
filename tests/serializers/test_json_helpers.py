"""load_object calls json's C scanner directly; it must accept and refuse exactly what
json.loads does (an object in, everything else a RemoteProtocolError)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonewire.exceptions import RemoteProtocolError
from phonewire.serializers._values import load_object

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
SPACE = st.text(alphabet=" \t\n\r", max_size=3)


def _reference(text: str) -> Any:
    """What json.loads makes of ``text``: the dict, or the exception type for anything else."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return ValueError
    return obj if isinstance(obj, dict) else TypeError


def _ours(text: str) -> Any:
    try:
        return load_object(text, "test")
    except RemoteProtocolError as exc:
        return TypeError if "not an object" in str(exc) else ValueError


@given(JSON_VALUES, SPACE, SPACE, st.sampled_from([(",", ":"), (", ", ": ")]))
def test_valid_json_is_parsed_exactly_as_json_loads_does(value: Any, lead: str, trail: str, seps: Any) -> None:
    text = lead + json.dumps(value, separators=seps) + trail
    assert _ours(text) == _reference(text)


@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4), st.data())
def test_truncated_or_extended_objects_are_refused_like_json_loads(obj: dict[str, Any], data: Any) -> None:
    text = json.dumps(obj)
    cut = data.draw(st.integers(0, len(text)))
    extra = data.draw(st.text(max_size=4))
    for candidate in (text[:cut], text + extra, text[:cut] + extra):
        assert _ours(candidate) == _reference(candidate)


@given(st.text(max_size=40))
def test_arbitrary_text_is_refused_or_parsed_like_json_loads(text: str) -> None:
    assert _ours(text) == _reference(text)


@pytest.mark.parametrize("data", [b"{}", bytearray(b"{}"), memoryview(b"{}")])
def test_binary_frames_are_refused_with_close_code_1003(data: Any) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        load_object(data, "test")
    assert caught.value.close_code == 1003


def test_deep_nesting_is_a_protocol_error_not_a_crash() -> None:
    with pytest.raises(RemoteProtocolError, match="invalid JSON"):
        load_object('{"a":' * 100_000 + "1" + "}" * 100_000, "test")
