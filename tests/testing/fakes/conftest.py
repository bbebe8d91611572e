"""Fixtures for the FakeOpenAIServer tests: a started fake and SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from phonewire.testing.fakes import FakeOpenAIServer


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def client(fake: FakeOpenAIServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.base_url, api_key="sk-test-abcd", max_retries=0, timeout=10) as sdk:
        yield sdk


def async_client(fake: FakeOpenAIServer, **kwargs: object) -> openai.AsyncOpenAI:
    options: dict = {"max_retries": 0, "timeout": 10.0, **kwargs}
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test-abcd", **options)
