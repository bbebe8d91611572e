"""One ``AsyncOpenAI`` per audio service, with the SDK's own retries off.

Why retries off: the services retry once themselves, inside their own deadlines (a caller on
the phone cannot wait for the SDK's 2 retries with backoff). The key is kept in a holder whose
repr hides it, so neither the service's repr nor a log line can show it.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from phonewire.exceptions import ConfigurationError
from phonewire.services.openai.audio_requests import is_retryable_status

__all__ = ["AudioClient", "SecretKey", "is_retryable_error"]


class SecretKey:
    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "SecretKey(***)"


class AudioClient:
    """Creates the client at ``open()`` (the StartFrame) and closes it at ``close()`` unless
    the user passed their own ``client``, which stays theirs."""

    def __init__(
        self,
        owner: str,
        *,
        api_key: str | None,
        base_url: str | None,
        client: Any = None,
        timeout_secs: float = 30.0,
        connect_timeout_secs: float = 3.0,
    ) -> None:
        if client is None and api_key is None and not os.environ.get("OPENAI_API_KEY"):
            raise ConfigurationError(f"{owner} needs api_key= or OPENAI_API_KEY (any string for local servers)")
        self._key = SecretKey(api_key) if api_key is not None else None
        self._base_url = base_url
        self._client = client
        self._owned = client is None
        self._timeout_secs = timeout_secs
        self._connect_timeout_secs = connect_timeout_secs

    def open(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.AsyncOpenAI(
                api_key=self._key.value if self._key else None,
                base_url=self._base_url,
                max_retries=0,
                timeout=openai.Timeout(self._timeout_secs, connect=self._connect_timeout_secs),
            )
        return self._client

    @property
    def client(self) -> Any:
        return self.open()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._owned:
            with contextlib.suppress(Exception):
                await client.close()
        elif client is not None:
            self._client = client  # the user's: keep it for a later run


def is_retryable_error(error: BaseException) -> bool:
    """SDK status errors by status (and quota code); connection errors and timeouts: yes."""
    import openai

    if isinstance(error, openai.APIStatusError):
        body = error.body if isinstance(error.body, dict) else {}
        code = error.code if isinstance(error.code, str) else body.get("code")
        return is_retryable_status(error.status_code, code if isinstance(code, str) else None)
    return True
