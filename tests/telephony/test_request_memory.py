"""The signed-request memory behind idempotent minting (issue 11, finding 6): atomic, expiring, bounded."""

from __future__ import annotations

import pytest

from phonewire.exceptions import ConfigurationError
from phonewire.telephony.request_memory import InMemorySignedRequestStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_first_value_is_kept_and_returned_to_every_later_caller() -> None:
    store = InMemorySignedRequestStore(clock=Clock())
    assert store.remember("k", "first", 2000) == "first"
    assert store.remember("k", "second", 2000) == "first"
    assert store.remember("other", "x", 2000) == "x"


def test_an_entry_is_forgotten_after_it_expires() -> None:
    clock = Clock()
    store = InMemorySignedRequestStore(clock=clock)
    store.remember("k", "first", 1010)
    clock.now = 1010
    assert store.remember("k", "second", 1100) == "second" and len(store) == 1


def test_an_already_expired_request_is_not_stored() -> None:
    store = InMemorySignedRequestStore(clock=Clock())
    assert store.remember("k", "v", 999) == "v" and len(store) == 0


def test_memory_is_bounded_by_dropping_the_entry_closest_to_expiry() -> None:
    store = InMemorySignedRequestStore(max_entries=3, clock=Clock())
    for i in range(10):
        store.remember(f"k{i}", f"v{i}", 2000 + i)
    assert len(store) == 3
    assert store.remember("k9", "new", 3000) == "v9"  # the latest survive
    assert store.remember("k0", "new", 3000) == "new"  # the earliest were dropped


def test_the_repr_shows_no_stored_token() -> None:
    store = InMemorySignedRequestStore(clock=Clock())
    store.remember("k", "TOKEN-VALUE", 2000)
    assert "TOKEN-VALUE" not in repr(store)


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ConfigurationError):
        InMemorySignedRequestStore(max_entries=0)
