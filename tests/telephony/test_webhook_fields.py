"""Webhook body parsing (issue 11, findings 1 and 5): bounded, one documented error, signed fields only."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonewire.telephony.webhook_fields import (
    MAX_FORM_FIELDS,
    MAX_WEBHOOK_BODY_BYTES,
    WebhookBodyError,
    call_fields,
    parse_body,
    parse_form,
)

CONTENT_TYPES = st.sampled_from(
    ["application/x-www-form-urlencoded", "application/json", "application/json; charset=utf-8", "text/plain", None]
)


@settings(max_examples=300)
@given(CONTENT_TYPES, st.binary(max_size=2048))
def test_any_body_parses_or_raises_only_webhook_body_error(content_type: str | None, body: bytes) -> None:
    try:
        form, data = parse_body(content_type, body)
    except WebhookBodyError as exc:
        assert exc.status in (400, 413)
        return
    assert form is None or data is None
    for provider in ("twilio", "telnyx", "plivo", "vonage", "exotel"):
        fields = call_fields(provider, form, data)
        for value in (fields.call_id, fields.from_number, fields.to_number, fields.account_id):
            assert value is None or (isinstance(value, str) and value)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
)


@settings(max_examples=200)
@given(JSON_VALUES)
def test_any_json_shape_gives_text_ids_or_none(value: object) -> None:
    for wrapped in (value, {"data": value}, {"data": {"payload": value}}):
        try:
            _, data = parse_body("application/json", json.dumps(wrapped).encode())
        except WebhookBodyError:
            continue
        for provider in ("telnyx", "vonage"):
            call_id = call_fields(provider, None, data).call_id
            assert call_id is None or isinstance(call_id, str)


def test_a_body_over_the_cap_is_413() -> None:
    with pytest.raises(WebhookBodyError) as info:
        parse_body("application/x-www-form-urlencoded", b"a" * (MAX_WEBHOOK_BODY_BYTES + 1))
    assert info.value.status == 413


def test_too_many_form_fields_is_413_and_the_limit_itself_is_fine() -> None:
    assert len(parse_form("&".join(f"f{i}=1" for i in range(MAX_FORM_FIELDS)))) == MAX_FORM_FIELDS
    with pytest.raises(WebhookBodyError) as info:
        parse_form("&".join(f"f{i}=1" for i in range(MAX_FORM_FIELDS + 1)))
    assert info.value.status == 413


def test_deeply_nested_json_is_a_400_not_a_recursion_error() -> None:
    with pytest.raises(WebhookBodyError) as info:
        parse_body("application/json", b"[" * 60_000)
    assert info.value.status == 400


def test_telnyx_call_control_json_names_its_call_control_id() -> None:
    body = {"data": {"event_type": "call.initiated", "payload": {"call_control_id": "v3:x", "from": "+1", "to": "+2"}}}
    _, data = parse_body("application/json", json.dumps(body).encode())
    fields = call_fields("telnyx", None, data)
    assert (fields.call_id, fields.from_number, fields.to_number) == ("v3:x", "+1", "+2")


def test_repeated_form_names_are_refused() -> None:
    # One value could be what a signature covers and another what the call id is read from.
    assert parse_form(b"a=1&b=") == {"a": ["1"], "b": [""]}
    with pytest.raises(WebhookBodyError) as caught:
        parse_form(b"a=1&a=2&b=")
    assert caught.value.status == 400
