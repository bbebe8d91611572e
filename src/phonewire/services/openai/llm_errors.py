"""What a failed Chat Completions attempt was, and whether one more try can still help the caller.

The SDK's own retries are off (``max_retries=0``): its backoff honours ``retry-after`` up to
120 s, far beyond a phone turn. Here a retry is worth it only if it can still be heard within
about two seconds: ``retry-after`` above ``max_retry_after_secs`` means "apologise now".
"""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from typing import Any

import openai

from phonewire.services.openai.chat_stream import ChatStreamError

__all__ = ["Failure", "LLMTimeout", "StreamOptionsRejected", "TruncatedStream", "classify", "retry_after_secs"]

#: Pause before a retry when the server did not say how long to wait.
DEFAULT_RETRY_DELAY_SECS = 0.2


class LLMTimeout(Exception):
    """Our own deadline passed: no first token in time, or the stream stalled."""


class TruncatedStream(Exception):
    """The stream ended without a ``finish_reason`` and without tool calls: a cut reply."""


class StreamOptionsRejected(Exception):
    """The server refused ``stream_options`` (a 400 naming it): ask again without it."""


@dataclass(frozen=True, slots=True)
class Failure:
    kind: str
    detail: str
    retryable: bool
    delay: float = DEFAULT_RETRY_DELAY_SECS


def classify(exc: BaseException, *, max_retry_after_secs: float) -> Failure:
    """Sort an exception from one attempt into a counted kind; never includes a secret."""
    if isinstance(exc, LLMTimeout):
        return Failure("timeout", str(exc), True)
    if isinstance(exc, TruncatedStream):
        return Failure("truncated", "the stream ended without finish_reason", True)
    if isinstance(exc, json.JSONDecodeError):
        return Failure("bad_json", f"undecodable chunk ({exc.msg})", True)
    if isinstance(exc, ChatStreamError):
        return Failure("stream_error", str(exc), True)
    if isinstance(exc, openai.APITimeoutError):
        return Failure("timeout", "the HTTP request timed out", True)
    if isinstance(exc, openai.APIConnectionError):
        return Failure("connection", f"connection failed or broke ({type(exc.__cause__).__name__})", True)
    if isinstance(exc, openai.APIStatusError):
        return _status_failure(exc, max_retry_after_secs)
    if isinstance(exc, openai.APIError):  # an error event in the middle of the stream
        return Failure("stream_error", _short(exc.message), True)
    return Failure("internal", f"{type(exc).__name__}: {_short(str(exc))}", False)


def _status_failure(exc: openai.APIStatusError, cap: float) -> Failure:
    status = exc.status_code
    detail = f"HTTP {status}: {_short(exc.message)}"
    if request_id := exc.response.headers.get("x-request-id"):
        detail += f" (x-request-id {_short(request_id, 80)})"
    code = exc.code if isinstance(exc.code, str) else None
    if status == 429 and code == "insufficient_quota":
        return Failure("quota", detail, False)
    kind = "rate_limit" if status == 429 else "server_error" if status >= 500 else f"http_{status}"
    if status not in (408, 409, 429) and status < 500:
        return Failure(kind, detail, False)
    if exc.response.headers.get("x-should-retry") == "false":
        return Failure(kind, detail, False)
    delay = retry_after_secs(exc.response.headers)
    if delay is None:
        return Failure(kind, detail, True)
    if delay > cap:
        return Failure(kind, f"{detail}; retry-after {delay:.1f}s is beyond {cap:g}s", False)
    return Failure(kind, detail, True, max(0.0, delay))


def retry_after_secs(headers: Any) -> float | None:
    """``retry-after-ms``, else ``retry-after`` (seconds or an HTTP date), else None."""
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return float(ms) / 1000.0
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return when.timestamp() - time.time()
    except (TypeError, ValueError, OverflowError):
        return None


def is_stream_options_rejection(exc: BaseException) -> bool:
    return isinstance(exc, openai.BadRequestError) and "stream_options" in str(exc.message)


def _short(text: str, limit: int = 200) -> str:
    """Peer text, made safe for a log line: one line, bounded."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
