"""Answer documents stay well-formed whatever the caller id holds (issue 11, finding 7)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonewire.telephony import documents

URL = "wss://bot.example.com/ws"


@settings(max_examples=300)
@given(st.text(max_size=40), st.text(max_size=40))
def test_every_xml_document_parses_whatever_from_and_to_hold(from_number: str, to_number: str) -> None:
    params = {"from_number": from_number, "to_number": to_number, "phonewireToken": "tok-en_1"}
    for doc in (documents.twiml_connect_stream(URL, params), documents.telnyx_texml(URL, params)):
        values = {p.get("name"): p.get("value") for p in ET.fromstring(doc).iter("Parameter")}
        assert values["phonewireToken"] == "tok-en_1"
        assert values["from_number"] == documents.clean(from_number)
    plivo = ET.fromstring(
        documents.plivo_stream_xml(URL, {"From": from_number, "To": to_number, "phonewireToken": "t"})
    )
    extra = plivo.find("./Stream").get("extraHeaders", "")  # type: ignore[union-attr]
    keys = [pair.split("=", 1)[0] for pair in extra.split(";")]
    assert keys.count("phonewireToken") == 1 and set(keys) <= {"From", "To", "phonewireToken"}
    ncco = json.loads(documents.vonage_ncco(URL, {"from_number": from_number}))
    assert ncco[0]["endpoint"][0]["headers"]["from_number"] == documents.clean(from_number)


def test_control_characters_are_stripped_and_ordinary_text_kept() -> None:
    assert documents.clean("+1\x00\x01\t\n\x7f\x85555\ufffe") == "+1555"
    assert documents.clean("sip:alice@example.com ünïcode") == "sip:alice@example.com ünïcode"


def test_a_plivo_value_with_a_separator_is_left_out_not_split() -> None:
    extra = documents.plivo_extra_headers({"From": "+1;role=admin", "To": "+2", "phonewireToken": "t"})
    assert extra == "To=+2;phonewireToken=t"


def test_a_plivo_key_that_is_not_alphanumeric_is_a_bug_and_raises() -> None:
    with pytest.raises(ValueError):
        documents.plivo_extra_headers({"role=admin;x": "1"})
