"""Stream tokens: bound to one call, short-lived, single-use, and robust to garbage."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonewire.exceptions import ConfigurationError, PhonewireError
from phonewire.telephony.tokens import (
    SECRET_ENV_VAR,
    STREAM_TOKEN_PARAMETER,
    InMemoryReplayStore,
    ReplayStore,
    StreamTokenError,
    StreamTokenSigner,
    signer_from_env,
)

SECRET = "test-secret-0123456789abcdef"
CALL = "CA1234567890abcdef1234567890abcdef"
T0 = 1_800_000_000.0


class FakeClock:
    """Unix time that only moves when the test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_signer(clock: FakeClock | None = None, **kwargs: object) -> StreamTokenSigner:
    return StreamTokenSigner(SECRET, clock=clock or FakeClock(), **kwargs)  # type: ignore[arg-type]


def reason(signer: StreamTokenSigner, token: str | None, call_id: str | None = CALL, provider: str = "") -> str:
    with pytest.raises(StreamTokenError) as caught:
        signer.verify(token, call_id, provider=provider)
    return caught.value.reason


def flip_byte(token: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_a_minted_token_verifies_for_its_call() -> None:
    signer = make_signer()
    assert signer.verify(signer.mint(CALL), CALL) is None


def test_a_token_is_url_safe_and_needs_no_escaping_in_twiml_or_a_query_string() -> None:
    token = make_signer().mint(CALL)
    assert token.replace("-", "").replace("_", "").isalnum()
    assert len(token) < 100


def test_a_token_verifies_just_before_expiry_and_is_expired_at_expiry() -> None:
    clock = FakeClock()
    signer = make_signer(clock, ttl_s=120)
    early, late = signer.mint(CALL), signer.mint(CALL)
    clock.advance(119.999)
    signer.verify(early, CALL)
    clock.advance(0.001)
    assert reason(signer, late) == "expired"


def test_a_token_for_another_call_is_a_call_id_mismatch() -> None:
    signer = make_signer()
    assert reason(signer, signer.mint(CALL), "CA-someone-else") == "call id mismatch"
    assert reason(signer, signer.mint(CALL), None) == "call id mismatch"


def test_a_token_minted_for_another_provider_has_a_bad_signature() -> None:
    signer = make_signer()
    assert reason(signer, signer.mint(CALL, provider="twilio"), provider="telnyx") == "bad signature"
    signer.verify(signer.mint(CALL, provider="twilio"), CALL, provider="twilio")


@pytest.mark.parametrize("index", [0, 1, 9, 17, 20, -1])
def test_a_token_with_any_byte_altered_is_rejected(index: int) -> None:
    signer = make_signer()
    tampered = flip_byte(signer.mint(CALL), index)
    assert reason(signer, tampered) in {"bad signature", "call id mismatch", "malformed"}


def test_a_token_with_its_expiry_pushed_back_has_a_bad_signature() -> None:
    signer = make_signer()
    assert reason(signer, flip_byte(signer.mint(CALL), 7)) == "bad signature"


def test_a_token_with_its_mac_altered_has_a_bad_signature() -> None:
    signer = make_signer()
    assert reason(signer, flip_byte(signer.mint(CALL), -3)) == "bad signature"


def test_a_token_minted_with_another_secret_has_a_bad_signature() -> None:
    other = StreamTokenSigner("another-secret-0123456789", clock=FakeClock())
    assert reason(make_signer(), other.mint(CALL)) == "bad signature"


def test_a_token_is_single_use() -> None:
    signer = make_signer()
    token = signer.mint(CALL)
    signer.verify(token, CALL)
    assert reason(signer, token) == "replayed"


def test_a_re_encoded_token_is_still_the_same_single_use() -> None:
    signer = make_signer()
    token = signer.mint(CALL)
    signer.verify(token, CALL)
    padded = base64.urlsafe_b64encode(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))).decode()
    assert reason(signer, padded.rstrip("=")) == "replayed"


def test_a_failed_verification_does_not_use_up_the_token() -> None:
    signer = make_signer()
    token = signer.mint(CALL)
    assert reason(signer, token, "CA-wrong") == "call id mismatch"
    signer.verify(token, CALL)


def test_an_expired_token_is_reported_as_expired_not_replayed() -> None:
    clock = FakeClock()
    signer = make_signer(clock, ttl_s=10)
    token = signer.mint(CALL)
    signer.verify(token, CALL)
    clock.advance(10)
    assert reason(signer, token) == "expired"


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "not a token",
        "abc",
        "A" * 300,
        "=" * 8,
        base64.urlsafe_b64encode(b"\x02" + b"\x00" * 60).decode().rstrip("="),
        base64.urlsafe_b64encode(b"\x01" + b"\x00" * 16 + b"\x00" + b"\x00" * 32).decode().rstrip("="),
        "Zm9v\u00e9",
    ],
)
def test_garbage_is_rejected_as_malformed(token: str | None) -> None:
    assert reason(make_signer(), token) == "malformed"


def test_a_token_whose_nonce_length_overruns_it_is_malformed() -> None:
    signer = make_signer()
    raw = bytearray(base64.urlsafe_b64decode(signer.mint(CALL, nonce="n") + "=="))
    raw[17] = 200
    assert reason(signer, base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")) == "malformed"


@settings(max_examples=500)
@given(token=st.none() | st.text(st.characters(exclude_categories=())), call_id=st.none() | st.text())
def test_arbitrary_strings_raise_nothing_but_stream_token_error(token: str | None, call_id: str | None) -> None:
    with pytest.raises(StreamTokenError):
        make_signer().verify(token, call_id)


@settings(max_examples=500)
@given(raw=st.binary(max_size=200))
def test_arbitrary_well_encoded_bytes_raise_nothing_but_stream_token_error(raw: bytes) -> None:
    token = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    with pytest.raises(StreamTokenError):
        make_signer().verify(token, CALL)


@given(call_id=st.text(min_size=1), provider=st.text())
def test_any_call_id_and_provider_round_trip(call_id: str, provider: str) -> None:
    signer = make_signer()
    signer.verify(signer.mint(call_id, provider=provider), call_id, provider=provider)
    assert signer.replay_store.claim("unrelated", T0 + 1)


def test_two_signers_with_the_same_secret_accept_each_others_tokens() -> None:
    clock = FakeClock()
    webhook_process = StreamTokenSigner(SECRET, clock=clock)
    stream_process = StreamTokenSigner(SECRET.encode(), clock=clock)
    stream_process.verify(webhook_process.mint(CALL, provider="twilio"), CALL, provider="twilio")
    webhook_process.verify(stream_process.mint(CALL), CALL)


def test_signers_sharing_a_replay_store_reject_a_token_replayed_on_another_process() -> None:
    clock = FakeClock()
    shared = InMemoryReplayStore(clock=clock)
    first = StreamTokenSigner(SECRET, clock=clock, replay_store=shared)
    second = StreamTokenSigner(SECRET, clock=clock, replay_store=shared)
    token = first.mint(CALL)
    first.verify(token, CALL)
    assert reason(second, token) == "replayed"


def test_a_fixed_nonce_makes_minting_reproducible_and_random_nonces_differ() -> None:
    signer = make_signer()
    assert signer.mint(CALL, nonce="n1") == signer.mint(CALL, nonce="n1")
    assert signer.mint(CALL, nonce="n1") != signer.mint(CALL, nonce="n2")
    assert signer.mint(CALL) != signer.mint(CALL)


def test_bad_construction_and_minting_arguments_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        StreamTokenSigner("short")
    with pytest.raises(ConfigurationError):
        StreamTokenSigner(SECRET, ttl_s=0)
    signer = make_signer()
    with pytest.raises(ConfigurationError):
        signer.mint("")
    with pytest.raises(ConfigurationError):
        signer.mint(CALL, nonce="")
    with pytest.raises(ConfigurationError):
        signer.mint(CALL, nonce="x" * 65)


def test_the_secret_never_appears_in_repr_or_errors() -> None:
    signer = make_signer()
    assert SECRET not in repr(signer)
    assert "ttl_s=120.0" in repr(signer)
    with pytest.raises(StreamTokenError) as caught:
        signer.verify(signer.mint("CA-a"), "CA-b")
    assert SECRET not in str(caught.value)
    with pytest.raises(ConfigurationError) as short:
        StreamTokenSigner("tiny-secret")
    assert "tiny-secret" not in str(short.value)


def test_stream_token_error_carries_its_reason_and_a_policy_violation_close_code() -> None:
    error = StreamTokenError("replayed")
    assert isinstance(error, PhonewireError)
    assert error.reason == "replayed"
    assert error.close_code == 1008
    assert "replayed" in str(error)


def test_the_suggested_parameter_name_is_alphanumeric_for_plivo_extra_headers() -> None:
    assert STREAM_TOKEN_PARAMETER.isalnum()


# --------------------------------------------------------------------------- replay store


def test_the_replay_store_is_satisfied_by_a_duck_typed_class() -> None:
    class AlwaysFresh:
        def claim(self, key: str, expires_at: float) -> bool:
            return True

    store: ReplayStore = AlwaysFresh()
    signer = make_signer(replay_store=store)
    token = signer.mint(CALL)
    signer.verify(token, CALL)
    signer.verify(token, CALL)
    assert signer.replay_store is store


def test_a_replay_store_claim_succeeds_once_per_key() -> None:
    store = InMemoryReplayStore(clock=FakeClock())
    assert store.claim("k", T0 + 60)
    assert not store.claim("k", T0 + 60)
    assert store.claim("other", T0 + 60)


def test_the_replay_store_forgets_keys_once_they_expire() -> None:
    clock = FakeClock()
    store = InMemoryReplayStore(clock=clock)
    store.claim("a", T0 + 10)
    store.claim("b", T0 + 20)
    clock.advance(10)
    assert store.claim("c", T0 + 30)
    assert len(store) == 2
    assert store.claim("a", T0 + 40)
    assert not store.claim("b", T0 + 40)


def test_the_replay_store_is_bounded_and_evicts_the_entry_closest_to_expiry() -> None:
    store = InMemoryReplayStore(max_entries=3, clock=FakeClock())
    for index, key in enumerate(["late", "soonest", "middle", "new1", "new2"]):
        store.claim(key, T0 + {"late": 100, "soonest": 10, "middle": 50}.get(key, 200 + index))
    assert len(store) == 3
    assert store.max_entries == 3
    assert store.claim("soonest", T0 + 10)
    assert not store.claim("new2", T0 + 999)


def test_the_replay_store_stays_bounded_under_many_claims() -> None:
    clock = FakeClock()
    store = InMemoryReplayStore(max_entries=100, clock=clock)
    for index in range(10_000):
        store.claim(f"k{index}", T0 + 120)
        assert len(store) <= 100
    assert "entries=100" in repr(store)


def test_the_replay_store_rejects_a_zero_capacity() -> None:
    with pytest.raises(ConfigurationError):
        InMemoryReplayStore(max_entries=0)


def test_the_default_replay_store_is_in_memory_and_uses_the_signers_clock() -> None:
    clock = FakeClock()
    signer = make_signer(clock, ttl_s=5)
    signer.verify(signer.mint(CALL), CALL)
    store = signer.replay_store
    assert isinstance(store, InMemoryReplayStore)
    assert len(store) == 1
    clock.advance(5)
    store.claim("next", T0 + 60)
    assert len(store) == 1


# --------------------------------------------------------------------------- environment


def test_signer_from_env_is_none_when_the_secret_is_unset_or_empty() -> None:
    assert signer_from_env(environ={}) is None
    assert signer_from_env(environ={SECRET_ENV_VAR: ""}) is None


def test_signer_from_env_uses_the_secret_from_the_environment() -> None:
    signer = signer_from_env(environ={SECRET_ENV_VAR: SECRET}, ttl_s=30)
    assert signer is not None
    assert signer.ttl_s == 30
    signer.verify(StreamTokenSigner(SECRET).mint(CALL), CALL)


def test_signer_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV_VAR, SECRET)
    signer = signer_from_env()
    assert signer is not None
    signer.verify(StreamTokenSigner(SECRET).mint(CALL), CALL)


def test_signer_from_env_refuses_a_short_secret() -> None:
    with pytest.raises(ConfigurationError):
        signer_from_env(environ={SECRET_ENV_VAR: "short"})


def test_a_token_bound_to_an_account_verifies_only_for_that_account() -> None:
    """Issue 11, finding 4: the Twilio account in the hang-up URL must be the webhook's."""
    from phonewire.telephony.tokens import StreamTokenError, StreamTokenSigner

    def ok(account: str) -> bool:
        signer = StreamTokenSigner("k" * 32)
        token = signer.mint("CA1", provider="twilio", account="AC1")
        try:
            signer.verify(token, "CA1", provider="twilio", account=account)
        except StreamTokenError:
            return False
        return True

    assert ok("AC1")
    assert not ok("AC2") and not ok("") and not ok("AC1/Calls/CA9.json?x=")
