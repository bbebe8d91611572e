"""The simulated providers' shared check of the bot's JSON text frames: what a real provider
would reject becomes a ProtocolViolation with that provider's own error code."""

from __future__ import annotations

import pytest

from phonewire.testing.providers.base import ProtocolViolation, json_object, json_text_frame


def test_an_object_comes_back_as_a_dict() -> None:
    assert json_text_frame('{"event": "media"}', "Twilio") == {"event": "media"}


@pytest.mark.parametrize("frame", [b"{}", bytearray(b"{}"), memoryview(b"{}")])
def test_a_binary_frame_is_a_violation_with_the_binary_code_when_there_is_one(frame: bytes) -> None:
    assert json_text_frame(frame, "Twilio", 31951, binary_code=31950) == ProtocolViolation(
        "binary frame: Twilio accepts only JSON text frames", 31950
    )
    assert json_text_frame(frame, "Telnyx", 90046).code == 90046  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "message is not valid JSON"),
        ("[1, 2]", "message is not a JSON object"),
        ('"text"', "message is not a JSON object"),
        ("[" * 100_000 + "]" * 100_000, "message is not valid JSON"),  # json's recursion limit
    ],
)
def test_malformed_text_is_a_violation_with_the_providers_code(text: str, reason: str) -> None:
    assert json_object(text, 31951) == ProtocolViolation(reason, 31951)
    assert json_text_frame(text, "Exotel") == ProtocolViolation(reason, None)
