"""Providers as data: the public lookup and what each record builds."""

from __future__ import annotations

import pytest

from phonewire.serializers.base import CallInfo, MediaFormat
from phonewire.serializers.telnyx import TelnyxFrameSerializer
from phonewire.telephony.providers import CATCH_ALL, Provider, get_provider, providers


def test_every_builtin_provider_is_listed_in_recognition_order() -> None:
    assert [p.name for p in providers()] == ["twilio", "telnyx", "plivo", "exotel", "vonage", CATCH_ALL]
    assert all(isinstance(p, Provider) for p in providers())
    assert [p.name for p in providers() if not p.webhook] == [CATCH_ALL]


def test_an_unknown_name_is_a_key_error_naming_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: twilio"):
        get_provider("nope")


def test_credentials_come_from_keywords_first_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELNYX_API_KEY", "from-env")
    info = CallInfo("telnyx", "v3:abc", "stream", MediaFormat("mulaw", 8000))
    telnyx = get_provider("telnyx")
    assert telnyx.credentials == {"api_key": "TELNYX_API_KEY"}
    assert telnyx.build_serializer(info)._api_key == "from-env"  # type: ignore[attr-defined]
    assert telnyx.build_serializer(info, api_key="given")._api_key == "given"  # type: ignore[attr-defined]


def test_the_webhook_answer_codec_sets_telnyx_defaults_and_only_telnyx() -> None:
    info = CallInfo("telnyx", None, "stream", MediaFormat("mulaw", 8000))
    ser = get_provider("telnyx").build_serializer(info, answer_codec="L16", answer_rate=16000)
    assert isinstance(ser, TelnyxFrameSerializer)
    assert ser.output_format == MediaFormat("l16", 16000)
    kept = get_provider("telnyx").build_serializer(info, answer_codec="L16", answer_rate=16000, send_encoding="PCMA")
    assert kept.output_format == MediaFormat("alaw", 8000)
    twilio = CallInfo("twilio", None, "MZ1", MediaFormat("mulaw", 8000))
    assert get_provider("twilio").build_serializer(twilio, answer_codec="L16").output_format.encoding == "mulaw"
