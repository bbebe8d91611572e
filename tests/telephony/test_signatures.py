"""Provider signature checks: every vector passes, every tampering fails, hostile input never raises."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from phonewire.exceptions import ConfigurationError, PhonewireError
from phonewire.telephony.signatures import (
    SignatureError,
    TwilioSignatureSettings,
    load_telnyx_public_key,
    parse_twilio_signature_settings,
    plivo_v2_signature,
    plivo_v3_signature,
    public_url,
    twilio_signature,
    verify_plivo_v2,
    verify_plivo_v3,
    verify_plivo_v3_websocket,
    verify_telnyx,
    verify_telnyx_stream_token,
    verify_twilio,
    verify_vonage_jwt,
    vonage_application_jwt,
)

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent.parent / "fixtures" / "signature_vectors.json").read_text())
PUBLISHED = VECTORS["published"]
SELF = VECTORS["self_generated"]
EXTRA = VECTORS["phonewire_generated"]

# Lone surrogates included: hostile headers can carry anything the ASGI server lets through.
any_text = st.text(st.characters(exclude_categories=()), max_size=200)
params_strategy = st.dictionaries(any_text, any_text | st.lists(any_text, max_size=3), max_size=5)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --------------------------------------------------------------------------- Twilio

TWILIO_FORM_VECTORS = ["twilio_form_post", "twilio_form_post_with_port_443", "twilio_http_port_80"]


@pytest.mark.parametrize("name", TWILIO_FORM_VECTORS)
def test_twilio_signature_reproduces_each_published_form_vector(name: str) -> None:
    vector = PUBLISHED[name]
    assert twilio_signature(vector["url"], vector["params"], vector["token"]) == vector["expected"]


@pytest.mark.parametrize("name", TWILIO_FORM_VECTORS)
def test_each_published_twilio_form_vector_verifies(name: str) -> None:
    vector = PUBLISHED[name]
    assert verify_twilio(vector["url"], vector["params"], vector["expected"], vector["token"])


def test_twilio_json_body_vector_verifies_with_its_raw_body() -> None:
    vector = PUBLISHED["twilio_json_body"]
    body = vector["raw_body"].encode()
    assert hashlib.sha256(body).hexdigest() == vector["bodySHA256"]
    assert verify_twilio(vector["url"], None, vector["expected"], vector["token"], body=body)


def test_twilio_json_body_fails_when_the_body_is_tampered() -> None:
    vector = PUBLISHED["twilio_json_body"]
    body = vector["raw_body"].replace("true", "false").encode()
    assert not verify_twilio(vector["url"], None, vector["expected"], vector["token"], body=body)


def test_twilio_json_url_fails_when_the_body_is_not_given() -> None:
    vector = PUBLISHED["twilio_json_body"]
    assert not verify_twilio(vector["url"], None, vector["expected"], vector["token"])


def test_twilio_body_fails_when_the_url_carries_no_body_hash() -> None:
    vector = PUBLISHED["twilio_form_post"]
    signature = twilio_signature(vector["url"], None, vector["token"])
    assert verify_twilio(vector["url"], None, signature, vector["token"])
    assert not verify_twilio(vector["url"], None, signature, vector["token"], body=b"{}")


def test_twilio_websocket_upgrade_vector_verifies_over_the_url_alone() -> None:
    vector = SELF["twilio_websocket_upgrade"]
    assert twilio_signature(vector["url"], None, vector["token"]) == vector["expected"]
    assert verify_twilio(vector["url"], None, vector["expected"], vector["token"])
    assert verify_twilio(vector["url"], {}, vector["expected"], vector["token"])


def test_twilio_websocket_upgrade_fails_for_another_path() -> None:
    vector = SELF["twilio_websocket_upgrade"]
    assert not verify_twilio("wss://bot.example.com/other", None, vector["expected"], vector["token"])


def test_twilio_signature_made_without_port_verifies_at_the_url_with_default_port() -> None:
    vector = PUBLISHED["twilio_form_post"]
    url = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert verify_twilio(url, vector["params"], vector["expected"], vector["token"])


def test_twilio_signature_made_with_port_443_verifies_at_the_url_without_port() -> None:
    vector = PUBLISHED["twilio_form_post_with_port_443"]
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert verify_twilio(url, vector["params"], vector["expected"], vector["token"])


def test_twilio_signature_made_with_port_80_verifies_at_the_http_url_without_port() -> None:
    vector = PUBLISHED["twilio_http_port_80"]
    url = "http://mycompany.com/myapp.php?foo=1&bar=2"
    assert verify_twilio(url, vector["params"], vector["expected"], vector["token"])


def test_twilio_websocket_signed_with_port_443_verifies_at_the_wss_url_without_port() -> None:
    vector = EXTRA["twilio_websocket_upgrade_explicit_443"]
    assert verify_twilio("wss://bot.example.com/media", None, vector["expected"], vector["token"])


def test_twilio_websocket_signed_without_port_verifies_at_the_wss_url_with_port_443() -> None:
    vector = SELF["twilio_websocket_upgrade"]
    assert verify_twilio("wss://bot.example.com:443/media", None, vector["expected"], vector["token"])


def test_twilio_port_80_is_not_a_default_port_for_wss() -> None:
    vector = SELF["twilio_websocket_upgrade"]
    signed_with_80 = twilio_signature("wss://bot.example.com:80/media", None, vector["token"])
    assert not verify_twilio("wss://bot.example.com/media", None, signed_with_80, vector["token"])


def test_twilio_signature_fails_for_another_host() -> None:
    vector = PUBLISHED["twilio_form_post"]
    url = vector["url"].replace("mycompany.com", "attacker.example")
    assert not verify_twilio(url, vector["params"], vector["expected"], vector["token"])


@pytest.mark.parametrize(
    "url",
    [
        "https://mycompany.com/myapp.php?foo=1&bar=3",
        "https://mycompany.com/myapp.php?foo=1",
        "https://mycompany.com/other.php?foo=1&bar=2",
        "http://mycompany.com/myapp.php?foo=1&bar=2",
    ],
)
def test_twilio_signature_fails_when_the_url_is_tampered(url: str) -> None:
    vector = PUBLISHED["twilio_form_post"]
    assert not verify_twilio(url, vector["params"], vector["expected"], vector["token"])


@pytest.mark.parametrize(
    "change",
    [
        {"Digits": "1235"},
        {"Extra": "x"},
        {"CallSid": ["CA1234567890ABCDE", "CA0"]},
    ],
)
def test_twilio_signature_fails_when_a_param_is_tampered(change: dict[str, Any]) -> None:
    vector = PUBLISHED["twilio_form_post"]
    params = {**vector["params"], **change}
    assert not verify_twilio(vector["url"], params, vector["expected"], vector["token"])


def test_twilio_signature_fails_when_a_param_is_missing() -> None:
    vector = PUBLISHED["twilio_form_post"]
    params = {k: v for k, v in vector["params"].items() if k != "Caller"}
    assert not verify_twilio(vector["url"], params, vector["expected"], vector["token"])


@pytest.mark.parametrize("signature", ["RSOYDt4T1cUTdK1PDd93/VVr8B9=", "", None, "RSOYDt4T1cUTdK1PDd93/VVr8B8"])
def test_twilio_signature_fails_when_the_signature_is_tampered_or_missing(signature: str | None) -> None:
    vector = PUBLISHED["twilio_form_post"]
    assert not verify_twilio(vector["url"], vector["params"], signature, vector["token"])


def test_twilio_signature_fails_with_another_auth_token() -> None:
    vector = PUBLISHED["twilio_form_post"]
    assert not verify_twilio(vector["url"], vector["params"], vector["expected"], "54321")
    assert not verify_twilio(vector["url"], vector["params"], vector["expected"], "")


def test_twilio_repeated_params_are_sorted_and_deduplicated_and_unicode_is_utf8() -> None:
    vector = EXTRA["twilio_repeated_and_unicode_params"]
    assert twilio_signature(vector["url"], vector["params"], vector["token"]) == vector["expected"]
    reordered = {**vector["params"], "Digits": ["5", "1", "9"]}
    assert verify_twilio(vector["url"], reordered, vector["expected"], vector["token"])


def test_twilio_signature_header_whitespace_is_ignored() -> None:
    vector = PUBLISHED["twilio_form_post"]
    assert verify_twilio(vector["url"], vector["params"], f" {vector['expected']} ", vector["token"])


def test_twilio_webhooks_rule_sha256_vector_verifies_with_the_algorithm_from_its_header() -> None:
    vector = EXTRA["twilio_webhooks_rule_sha256"]
    settings_ = parse_twilio_signature_settings(vector["settings_header"])
    assert settings_ == TwilioSignatureSettings(key="KSdemo0000", algorithm="sha256")
    secret = vector["shared_key_secret"]
    assert twilio_signature(vector["url"], vector["params"], secret, algorithm="sha256") == vector["expected"]
    assert verify_twilio(vector["url"], vector["params"], vector["expected"], secret, algorithm=settings_.algorithm)


def test_twilio_webhooks_rule_signature_fails_when_checked_as_sha1() -> None:
    vector = EXTRA["twilio_webhooks_rule_sha256"]
    secret = vector["shared_key_secret"]
    assert not verify_twilio(vector["url"], vector["params"], vector["expected"], secret)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, TwilioSignatureSettings(key=None, algorithm="sha1")),
        ("", TwilioSignatureSettings(key=None, algorithm="sha1")),
        ("key=KS1,algorithm=HMAC_SHA1", TwilioSignatureSettings(key="KS1", algorithm="sha1")),
        (" algorithm = hmac_sha256 , key = KS2 ", TwilioSignatureSettings(key="KS2", algorithm="sha256")),
        ("key=KS3,algorithm=HMAC_SHA512", TwilioSignatureSettings(key="KS3", algorithm=None)),
        ("key=KS4", TwilioSignatureSettings(key="KS4", algorithm=None)),
    ],
)
def test_twilio_signature_settings_header_is_parsed_and_unknown_algorithms_fail_closed(
    header: str | None, expected: TwilioSignatureSettings
) -> None:
    assert parse_twilio_signature_settings(header) == expected


def test_twilio_verify_fails_for_an_unknown_algorithm_and_signing_refuses_it() -> None:
    vector = PUBLISHED["twilio_form_post"]
    assert not verify_twilio(vector["url"], vector["params"], vector["expected"], vector["token"], algorithm=None)
    assert not verify_twilio(vector["url"], vector["params"], vector["expected"], vector["token"], algorithm="md5")
    with pytest.raises(ConfigurationError):
        twilio_signature(vector["url"], vector["params"], vector["token"], algorithm="md5")


@settings(max_examples=300)
@given(url=any_text, params=params_strategy, signature=st.none() | any_text, body=st.none() | st.binary())
def test_twilio_verify_returns_false_and_never_raises_on_arbitrary_input(
    url: str, params: dict[str, Any], signature: str | None, body: bytes | None
) -> None:
    assert verify_twilio(url, params, signature, "12345", body=body) is False


# "%" and "body" excluded so the URL cannot carry a bodySHA256 field (which would demand a body).
@given(url=any_text.filter(lambda u: "%" not in u and "body" not in u.lower()), params=params_strategy)
def test_twilio_signature_round_trips_for_arbitrary_urls_and_params(url: str, params: dict[str, Any]) -> None:
    signature = twilio_signature(url, params, "secret-token")
    assert verify_twilio(url, params, signature, "secret-token")


# --------------------------------------------------------------------------- Telnyx

TELNYX = SELF["telnyx_webhook"]
TELNYX_TS = int(TELNYX["headers"]["telnyx-timestamp"])


def telnyx_args(**overrides: Any) -> dict[str, Any]:
    args = {
        "body": TELNYX["raw_body"].encode(),
        "signature_b64": TELNYX["headers"]["telnyx-signature-ed25519"],
        "timestamp": TELNYX["headers"]["telnyx-timestamp"],
        "public_key_b64": TELNYX["public_key_b64"],
        "now": float(TELNYX_TS),
    }
    return {**args, **overrides}


def test_telnyx_vector_verifies_at_its_timestamp() -> None:
    assert verify_telnyx(**telnyx_args())


@pytest.mark.parametrize("offset", [-300, -1, 1, 300])
def test_telnyx_vector_verifies_anywhere_inside_the_tolerance_window(offset: int) -> None:
    assert verify_telnyx(**telnyx_args(now=TELNYX_TS + offset))


@pytest.mark.parametrize("offset", [-301, 301, 86_400])
def test_telnyx_vector_fails_outside_the_tolerance_window(offset: int) -> None:
    assert not verify_telnyx(**telnyx_args(now=TELNYX_TS + offset))


def test_telnyx_tolerance_is_configurable() -> None:
    assert not verify_telnyx(**telnyx_args(now=TELNYX_TS + 31), tolerance_s=30)
    assert verify_telnyx(**telnyx_args(now=TELNYX_TS + 30), tolerance_s=30)


def test_telnyx_fails_when_the_body_is_tampered() -> None:
    body = TELNYX["raw_body"].replace("streaming.started", "streaming.stopped").encode()
    assert not verify_telnyx(**telnyx_args(body=body))


def test_telnyx_fails_when_the_timestamp_is_tampered() -> None:
    assert not verify_telnyx(**telnyx_args(timestamp=str(TELNYX_TS + 1)))


@pytest.mark.parametrize("timestamp", [f" {TELNYX_TS}", f"{TELNYX_TS}.0", "1_767_225_600", "", None])
def test_telnyx_fails_when_the_timestamp_is_not_plain_digits(timestamp: str | None) -> None:
    assert not verify_telnyx(**telnyx_args(timestamp=timestamp))


def test_telnyx_fails_when_the_signature_is_tampered() -> None:
    raw = bytearray(base64.b64decode(TELNYX["headers"]["telnyx-signature-ed25519"]))
    raw[10] ^= 1
    assert not verify_telnyx(**telnyx_args(signature_b64=base64.b64encode(bytes(raw)).decode()))
    assert not verify_telnyx(**telnyx_args(signature_b64=None))
    assert not verify_telnyx(**telnyx_args(signature_b64="not base64!"))


def test_telnyx_fails_with_another_public_key() -> None:
    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    assert not verify_telnyx(**telnyx_args(public_key_b64=base64.b64encode(other).decode()))


def test_telnyx_fails_with_a_malformed_public_key_and_loading_it_says_why() -> None:
    assert not verify_telnyx(**telnyx_args(public_key_b64="c2hvcnQ="))
    with pytest.raises(ConfigurationError):
        load_telnyx_public_key("c2hvcnQ=")


def test_telnyx_signature_made_with_a_fresh_key_verifies() -> None:
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes_raw()).decode()
    body = b'{"data":{"event_type":"call.initiated"}}'
    signature = base64.b64encode(key.sign(b"1800000000|" + body)).decode()
    assert verify_telnyx(body, signature, "1800000000", public, now=1_800_000_000)
    assert not verify_telnyx(body + b" ", signature, "1800000000", public, now=1_800_000_000)


@settings(max_examples=300)
@given(body=st.binary(max_size=200), signature=st.none() | any_text, timestamp=st.none() | any_text, now=st.floats())
def test_telnyx_verify_returns_false_and_never_raises_on_arbitrary_input(
    body: bytes, signature: str | None, timestamp: str | None, now: float
) -> None:
    assert verify_telnyx(body, signature, timestamp, TELNYX["public_key_b64"], now=now) is False


@given(public_key=any_text)
def test_telnyx_verify_never_raises_on_an_arbitrary_public_key(public_key: str) -> None:
    expected = public_key.strip() == TELNYX["public_key_b64"]
    assert verify_telnyx(**telnyx_args(public_key_b64=public_key)) is expected


def test_telnyx_stream_token_matches_only_the_configured_token() -> None:
    assert verify_telnyx_stream_token("s3cret-token", "s3cret-token")
    assert not verify_telnyx_stream_token("s3cret-tokem", "s3cret-token")
    assert not verify_telnyx_stream_token(None, "s3cret-token")
    assert not verify_telnyx_stream_token("", "")
    assert not verify_telnyx_stream_token("anything", "")


@given(presented=st.none() | any_text)
def test_telnyx_stream_token_never_raises_on_arbitrary_input(presented: str | None) -> None:
    assert verify_telnyx_stream_token(presented, "configured-token") is (presented == "configured-token")


# --------------------------------------------------------------------------- Plivo


def test_plivo_v2_published_vector_verifies() -> None:
    vector = PUBLISHED["plivo_v2"]
    assert plivo_v2_signature(vector["url"], vector["nonce"], vector["token"]) == vector["expected"]
    assert verify_plivo_v2(vector["url"], vector["nonce"], vector["expected"], vector["token"])


def test_plivo_v2_ignores_the_query_string_as_the_sdk_does() -> None:
    vector = PUBLISHED["plivo_v2"]
    assert verify_plivo_v2(vector["url"] + "?a=1", vector["nonce"], vector["expected"], vector["token"])


def test_plivo_v2_fails_when_url_nonce_signature_or_token_is_tampered() -> None:
    vector = PUBLISHED["plivo_v2"]
    url, nonce, signature, token = vector["url"], vector["nonce"], vector["expected"], vector["token"]
    assert not verify_plivo_v2("https://answer.url/x", nonce, signature, token)
    assert not verify_plivo_v2(url, "12346", signature, token)
    assert not verify_plivo_v2(url, nonce, signature.replace("e", "f", 1), token)
    assert not verify_plivo_v2(url, nonce, signature, "other")
    assert not verify_plivo_v2(url, None, signature, token)


PLIVO_V3_VECTORS = [
    ("self_generated", "plivo_v3_websocket_get"),
    ("self_generated", "plivo_v3_post_answer_url"),
    ("phonewire_generated", "plivo_v3_get_query_and_params"),
    ("phonewire_generated", "plivo_v3_post_query_and_params"),
    ("phonewire_generated", "plivo_v3_post_no_params"),
    ("phonewire_generated", "plivo_v3_https_websocket"),
]


@pytest.mark.parametrize(("section", "name"), PLIVO_V3_VECTORS)
def test_each_plivo_v3_vector_is_reproduced_and_verifies(section: str, name: str) -> None:
    v = VECTORS[section][name]
    params = v.get("params")
    assert plivo_v3_signature(v["method"], v["url"], params, v["nonce"], v["token"]) == v["expected"]
    assert verify_plivo_v3(v["method"], v["url"], params, v["nonce"], v["expected"], v["token"])


def test_plivo_v3_accepts_any_of_several_comma_separated_signatures() -> None:
    v = SELF["plivo_v3_post_answer_url"]
    other = plivo_v3_signature("POST", v["url"], v["params"], v["nonce"], "old_auth_token")
    for header in (f"{other},{v['expected']}", f"{v['expected']}, {other}", f"{other}, {v['expected']} "):
        assert verify_plivo_v3("POST", v["url"], v["params"], v["nonce"], header, v["token"])
    assert not verify_plivo_v3("POST", v["url"], v["params"], v["nonce"], f"{other},{other}", v["token"])


def test_plivo_v3_get_treats_params_and_query_string_alike() -> None:
    v = EXTRA["plivo_v3_get_query_and_params"]
    query = "&".join(f"{k}={val}" for k, val in v["params"].items())
    url = f"{v['url']}&{query}"
    assert verify_plivo_v3("GET", url, None, v["nonce"], v["expected"], v["token"])
    assert verify_plivo_v3("get", v["url"], v["params"], v["nonce"], v["expected"], v["token"])


@pytest.mark.parametrize(
    "change",
    [
        {"url": "https://app.example.com/answer2"},
        {"params": {"CallUUID": "d846de78-a55c-5445-b3ff-f736de61dbd7", "From": "14155550101", "To": "14155550199"}},
        {"nonce": "27182818284590452354"},
        {"method": "GET"},
        {"token": "other_auth_token"},
    ],
)
def test_plivo_v3_fails_when_anything_signed_is_tampered(change: dict[str, Any]) -> None:
    v = {**SELF["plivo_v3_post_answer_url"], **change}
    assert not verify_plivo_v3(v["method"], v["url"], v["params"], v["nonce"], v["expected"], v["token"])


def test_plivo_v3_fails_without_a_signature_or_nonce() -> None:
    v = SELF["plivo_v3_post_answer_url"]
    assert not verify_plivo_v3("POST", v["url"], v["params"], v["nonce"], None, v["token"])
    assert not verify_plivo_v3("POST", v["url"], v["params"], None, v["expected"], v["token"])
    assert not verify_plivo_v3("POST", v["url"], v["params"], v["nonce"], "", v["token"])


def test_plivo_v3_accepts_the_double_encoded_form_the_sdks_sign_for_non_ascii() -> None:
    url, nonce, token = "https://app.example.com/answer", "55555555555555555555", "demo_auth_token"
    params = {"CallerName": "José"}
    signed = f"{url}?CallerNameJosé.{nonce}".encode().decode("latin-1").encode()
    sdk_signature = base64.b64encode(hmac.new(token.encode(), signed, hashlib.sha256).digest()).decode()
    assert verify_plivo_v3("POST", url, params, nonce, sdk_signature, token)
    assert verify_plivo_v3("POST", url, params, nonce, plivo_v3_signature("POST", url, params, nonce, token), token)


def test_plivo_websocket_signed_over_wss_verifies_when_the_server_sees_ws_behind_a_proxy() -> None:
    v = SELF["plivo_v3_websocket_get"]
    assert verify_plivo_v3_websocket("ws://bot.example.com/stream", v["nonce"], v["expected"], v["token"])


def test_plivo_websocket_signed_over_https_verifies_at_the_wss_url() -> None:
    v = EXTRA["plivo_v3_https_websocket"]
    assert verify_plivo_v3_websocket("wss://bot.example.com/stream", v["nonce"], v["expected"], v["token"])


def test_plivo_websocket_falls_back_to_the_configured_url() -> None:
    v = SELF["plivo_v3_websocket_get"]
    internal = "ws://10.0.0.7:8000/stream"
    assert not verify_plivo_v3_websocket(internal, v["nonce"], v["expected"], v["token"])
    assert verify_plivo_v3_websocket(internal, v["nonce"], v["expected"], v["token"], configured_url=v["url"])


def test_plivo_websocket_fails_for_another_path_or_nonce() -> None:
    v = SELF["plivo_v3_websocket_get"]
    assert not verify_plivo_v3_websocket("wss://bot.example.com/other", v["nonce"], v["expected"], v["token"])
    assert not verify_plivo_v3_websocket(v["url"], "0" + v["nonce"], v["expected"], v["token"])


@settings(max_examples=300)
@given(
    method=st.sampled_from(["GET", "POST"]) | any_text,
    url=any_text,
    params=params_strategy,
    nonce=st.none() | any_text,
    header=st.none() | any_text,
)
def test_plivo_verify_returns_false_and_never_raises_on_arbitrary_input(
    method: str, url: str, params: dict[str, Any], nonce: str | None, header: str | None
) -> None:
    assert verify_plivo_v3(method, url, params, nonce, header, "demo_auth_token") is False
    assert verify_plivo_v3_websocket(url, nonce, header, "demo_auth_token", configured_url=url) is False
    assert verify_plivo_v2(url, nonce, header, "demo_auth_token") is False


# --------------------------------------------------------------------------- Vonage

VONAGE = SELF["vonage_signed_webhook"]
VONAGE_SECRET = VONAGE["signature_secret"]
VONAGE_BODY = VONAGE["raw_body"].encode()
VONAGE_IAT = VONAGE["claims"]["iat"]


def hs256(claims: dict[str, Any], secret: str = VONAGE_SECRET, header: dict[str, Any] | None = None) -> str:
    segments = [
        b64url(json.dumps(part, separators=(",", ":")).encode())
        for part in (header or {"alg": "HS256", "typ": "JWT"}, claims)
    ]
    signing_input = ".".join(segments)
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def test_vonage_vector_verifies_and_returns_its_claims() -> None:
    claims = verify_vonage_jwt(VONAGE["authorization"], VONAGE_SECRET, body=VONAGE_BODY, now=VONAGE_IAT)
    assert claims == VONAGE["claims"]


def test_vonage_token_verifies_with_or_without_the_bearer_prefix() -> None:
    bare = VONAGE["authorization"].removeprefix("Bearer ")
    assert verify_vonage_jwt(bare, VONAGE_SECRET, now=VONAGE_IAT)["jti"] == VONAGE["claims"]["jti"]
    assert verify_vonage_jwt("bearer  " + bare, VONAGE_SECRET, now=VONAGE_IAT)["iss"] == "Vonage"


@pytest.mark.parametrize(("offset", "message"), [(301, "expired"), (-301, "future")])
def test_vonage_token_fails_outside_the_freshness_window(offset: int, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify_vonage_jwt(VONAGE["authorization"], VONAGE_SECRET, now=VONAGE_IAT + offset)


def test_vonage_token_inside_a_configured_window_verifies() -> None:
    claims = verify_vonage_jwt(VONAGE["authorization"], VONAGE_SECRET, now=VONAGE_IAT + 500, max_age_s=600)
    assert claims["iat"] == VONAGE_IAT


def test_vonage_token_fails_with_the_wrong_secret() -> None:
    with pytest.raises(SignatureError, match="bad JWT signature"):
        verify_vonage_jwt(VONAGE["authorization"], "another-secret", now=VONAGE_IAT)
    with pytest.raises(SignatureError):
        verify_vonage_jwt(VONAGE["authorization"], "", now=VONAGE_IAT)


def test_vonage_token_fails_when_the_body_does_not_match_the_payload_hash() -> None:
    tampered = VONAGE_BODY.replace(b"answered", b"completed")
    with pytest.raises(SignatureError, match="payload_hash"):
        verify_vonage_jwt(VONAGE["authorization"], VONAGE_SECRET, body=tampered, now=VONAGE_IAT)


def test_vonage_token_fails_when_the_claims_are_tampered() -> None:
    header, payload, signature = VONAGE["authorization"].removeprefix("Bearer ").split(".")
    claims = {**VONAGE["claims"], "application_id": "bbbbbbbb-0000-4000-8000-000000000000"}
    forged = ".".join([header, b64url(json.dumps(claims, separators=(",", ":")).encode()), signature])
    with pytest.raises(SignatureError, match="bad JWT signature"):
        verify_vonage_jwt(forged, VONAGE_SECRET, now=VONAGE_IAT)


def test_vonage_token_without_payload_hash_fails_only_when_a_body_must_be_checked() -> None:
    token = hs256({"iat": VONAGE_IAT, "jti": "j1", "iss": "Vonage"})
    assert verify_vonage_jwt(token, VONAGE_SECRET, now=VONAGE_IAT)["jti"] == "j1"
    with pytest.raises(SignatureError, match="no payload_hash"):
        verify_vonage_jwt(token, VONAGE_SECRET, body=b"{}", now=VONAGE_IAT)


@pytest.mark.parametrize("alg", ["none", "HS512", "RS256", None])
def test_vonage_token_with_any_algorithm_but_hs256_fails_even_if_correctly_signed(alg: str | None) -> None:
    token = hs256({"iat": VONAGE_IAT}, header={"alg": alg, "typ": "JWT"})
    with pytest.raises(SignatureError, match="HS256"):
        verify_vonage_jwt(token, VONAGE_SECRET, now=VONAGE_IAT)


@pytest.mark.parametrize("iat", [None, "1767225600", True, 10**400])
def test_vonage_token_without_a_numeric_iat_fails(iat: Any) -> None:
    claims = {} if iat is None else {"iat": iat}
    with pytest.raises(SignatureError, match="iat"):
        verify_vonage_jwt(hs256(claims), VONAGE_SECRET, now=VONAGE_IAT)


def test_vonage_token_with_a_non_finite_number_is_rejected_as_malformed() -> None:
    with pytest.raises(SignatureError, match="malformed"):
        verify_vonage_jwt(hs256({"iat": float("inf")}), VONAGE_SECRET, now=VONAGE_IAT)
    with pytest.raises(SignatureError, match="malformed"):
        verify_vonage_jwt(hs256({"iat": float("nan")}), VONAGE_SECRET, now=VONAGE_IAT)


def test_vonage_token_past_its_exp_fails() -> None:
    token = hs256({"iat": VONAGE_IAT, "exp": VONAGE_IAT + 60})
    assert verify_vonage_jwt(token, VONAGE_SECRET, now=VONAGE_IAT + 59)["exp"] == VONAGE_IAT + 60
    with pytest.raises(SignatureError, match="expired"):
        verify_vonage_jwt(token, VONAGE_SECRET, now=VONAGE_IAT + 60)


def test_vonage_token_whose_claims_are_not_an_object_fails() -> None:
    signing_input = b64url(b'{"alg":"HS256"}') + "." + b64url(b"[1,2]")
    signature = hmac.new(VONAGE_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(SignatureError, match="malformed"):
        verify_vonage_jwt(f"{signing_input}.{b64url(signature)}", VONAGE_SECRET, now=VONAGE_IAT)


@settings(max_examples=300)
@given(token=st.none() | any_text, body=st.none() | st.binary(max_size=64))
def test_vonage_verify_raises_only_signature_error_on_arbitrary_text(token: str | None, body: bytes | None) -> None:
    with pytest.raises(SignatureError):
        verify_vonage_jwt(token, VONAGE_SECRET, body=body, now=VONAGE_IAT)


@given(header=any_text, claims=any_text)
def test_vonage_verify_raises_only_signature_error_on_correctly_signed_garbage(header: str, claims: str) -> None:
    signing_input = (
        b64url(header.encode("utf-8", "surrogatepass")) + "." + b64url(claims.encode("utf-8", "surrogatepass"))
    )
    signature = hmac.new(VONAGE_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    try:
        claims = verify_vonage_jwt(f"{signing_input}.{b64url(signature)}", VONAGE_SECRET, now=VONAGE_IAT)
    except SignatureError:
        return
    assert isinstance(claims, dict)


@pytest.fixture(scope="module")
def rsa_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode()


def test_vonage_application_jwt_is_rs256_signed_with_the_application_claims(rsa_key_pem: str) -> None:
    token = vonage_application_jwt("app-123", rsa_key_pem, now=1_800_000_000.7, ttl_s=300, jti="jti-1")
    header_b64, claims_b64, signature_b64 = token.split(".")
    assert json.loads(b64url_decode(header_b64)) == {"alg": "RS256", "typ": "JWT"}
    claims = json.loads(b64url_decode(claims_b64))
    assert claims == {"application_id": "app-123", "iat": 1_800_000_000, "exp": 1_800_000_300, "jti": "jti-1"}
    public = serialization.load_pem_private_key(rsa_key_pem.encode(), None).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(
        b64url_decode(signature_b64),
        f"{header_b64}.{claims_b64}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_vonage_application_jwt_gets_a_fresh_jti_each_time(rsa_key_pem: str) -> None:
    def jti(token: str) -> str:
        return json.loads(b64url_decode(token.split(".")[1]))["jti"]

    assert jti(vonage_application_jwt("app", rsa_key_pem)) != jti(vonage_application_jwt("app", rsa_key_pem))


def test_vonage_application_jwt_rejects_bad_keys_and_parameters_without_echoing_the_key(rsa_key_pem: str) -> None:
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    for bad_key in ("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", ec_pem):
        with pytest.raises(ConfigurationError) as caught:
            vonage_application_jwt("app", bad_key)
        assert "BEGIN" not in str(caught.value)
    with pytest.raises(ConfigurationError):
        vonage_application_jwt("", rsa_key_pem)
    with pytest.raises(ConfigurationError):
        vonage_application_jwt("app", rsa_key_pem, ttl_s=0)


def test_signature_error_is_a_phonewire_error_with_a_policy_violation_close_code() -> None:
    assert issubclass(SignatureError, PhonewireError)
    assert SignatureError("x").close_code == 1008


# --------------------------------------------------------------------------- public_url

PROXY_HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "bot.example.com"}


def test_public_url_ignores_forwarded_headers_unless_trusted() -> None:
    url = "ws://10.0.0.7:8000/media?x=1"
    assert public_url(url, PROXY_HEADERS, trust_forwarded=False) == url


def test_public_url_maps_ws_to_wss_and_takes_the_forwarded_host_when_trusted() -> None:
    assert public_url("ws://10.0.0.7:8000/media", PROXY_HEADERS, trust_forwarded=True) == "wss://bot.example.com/media"


def test_public_url_maps_http_to_https_and_keeps_path_and_query_exactly() -> None:
    url = "http://bot.example.com/answer%20x?b=2&a=%2F"
    result = public_url(url, {"x-forwarded-proto": "https"}, trust_forwarded=True)
    assert result == "https://bot.example.com/answer%20x?b=2&a=%2F"


def test_public_url_maps_a_forwarded_http_proto_to_ws_for_websockets() -> None:
    assert public_url("wss://h.example/m", {"x-forwarded-proto": "http"}, trust_forwarded=True) == "ws://h.example/m"


def test_public_url_uses_the_first_of_several_forwarded_values() -> None:
    headers = {"x-forwarded-proto": "https, http", "x-forwarded-host": "bot.example.com, lb.internal"}
    assert public_url("ws://lb/media", headers, trust_forwarded=True) == "wss://bot.example.com/media"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-Proto": "gopher"},
        {"X-Forwarded-Host": "evil.example/path"},
        {"X-Forwarded-Host": "user@evil.example"},
        {"X-Forwarded-Host": "a" * 2000},
        {},
    ],
)
def test_public_url_ignores_forwarded_values_that_are_not_a_plain_proto_or_host(headers: dict[str, str]) -> None:
    assert public_url("ws://bot.example.com/media", headers, trust_forwarded=True) == "ws://bot.example.com/media"


def test_public_url_rebuilds_from_an_asgi_scope_keeping_the_raw_path() -> None:
    scope = {
        "type": "websocket",
        "scheme": "ws",
        "server": ("10.0.0.7", 8000),
        "path": "/media stream",
        "raw_path": b"/media%20stream",
        "query_string": b"a=1",
        "headers": [(b"host", b"bot.example.com"), (b"x-forwarded-proto", b"https")],
    }
    assert public_url(scope, {"x-forwarded-proto": "https"}, trust_forwarded=True) == (
        "wss://bot.example.com/media%20stream?a=1"
    )
    assert public_url(scope, {}, trust_forwarded=False) == "ws://bot.example.com/media%20stream?a=1"


def test_public_url_from_a_scope_without_host_uses_the_server_and_drops_a_default_port() -> None:
    scope = {"type": "http", "scheme": "https", "server": ("bot.example.com", 443), "path": "/a b", "headers": []}
    assert public_url(scope, {}, trust_forwarded=False) == "https://bot.example.com/a%20b"
    scope["server"] = ("bot.example.com", 8443)
    assert public_url(scope, {}, trust_forwarded=False) == "https://bot.example.com:8443/a%20b"


def test_twilio_websocket_signature_verifies_behind_a_trusted_tls_proxy_only() -> None:
    vector = SELF["twilio_websocket_upgrade"]
    seen = "ws://127.0.0.1:8000/media"
    headers = {"x-forwarded-proto": "https", "x-forwarded-host": "bot.example.com"}
    trusted = public_url(seen, headers, trust_forwarded=True)
    untrusted = public_url(seen, headers, trust_forwarded=False)
    assert verify_twilio(trusted, None, vector["expected"], vector["token"])
    assert not verify_twilio(untrusted, None, vector["expected"], vector["token"])


def test_basic_auth_matches_only_the_configured_credentials() -> None:
    """Issue 11, finding 3: Exotel's webhook is authenticated by the operator's Basic credentials."""
    import base64

    from phonewire.telephony.signatures import verify_basic_auth

    def header(text: str) -> str:
        return "Basic " + base64.b64encode(text.encode()).decode()

    assert verify_basic_auth(header("u:p"), "u:p")
    assert verify_basic_auth("basic " + header("u:p")[6:], "u:p")
    for bad in (None, "", header("u:x"), header("u:pp"), "Bearer abc", "Basic !!!", header("u:p") + "x" * 2000):
        assert not verify_basic_auth(bad, "u:p")
    assert not verify_basic_auth(header(""), "")  # nothing configured: never matches


def test_vonage_query_payloads_bind_a_get_query_to_the_jwt() -> None:
    """Issue 11, finding 2: a GET JWT's payload_hash covers the query as compact JSON."""
    import hashlib
    import time

    from phonewire.telephony.signatures import verify_vonage_jwt, vonage_query_payloads

    payloads = vonage_query_payloads([("uuid", "u1"), ("from", "44ü")])
    assert b'{"uuid":"u1","from":"44\\u00fc"}' in payloads and '{"uuid":"u1","from":"44ü"}'.encode() in payloads
    claims = {"iat": int(time.time()), "payload_hash": hashlib.sha256(payloads[0]).hexdigest()}
    token = _hs256(claims, "sec")
    assert verify_vonage_jwt(token, "sec", body=payloads[0])["payload_hash"] == claims["payload_hash"]


def _hs256(claims: dict[str, object], secret: str) -> str:
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(json.dumps({'alg': 'HS256'}).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest())}"
