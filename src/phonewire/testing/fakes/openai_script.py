"""What ``FakeOpenAIServer`` answers, as plain data: replies, faults, latencies and the chunks they become.

Sans-I/O on purpose: everything here is a pure function of the script and the request, so the
chunk sequences can be unit-tested (and property-tested) without a socket, and the HTTP layer
in ``openai_server`` only decides *when* to send each piece. Shapes follow openai-python's
types (``ChatCompletionChunk``, ``ChatCompletion``, ``CompletionUsage``); the fake's own tests
validate every chunk against them so this module cannot drift from the SDK unnoticed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "BadJSON",
    "BrokenStream",
    "ChatLatency",
    "ChatReply",
    "ChatStream",
    "Fault",
    "Hang",
    "SpeechLatency",
    "Slow",
    "StatusFault",
    "StreamError",
    "TextReply",
    "ToolCall",
    "ToolCallsReply",
    "as_chat_reply",
    "build_chat_completion",
    "encode_sse",
    "error_body",
    "parse_sse",
    "split_text",
]

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]
SSE_DONE = "[DONE]"


# --- replies ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextReply:
    """An assistant text answer, streamed as content deltas.

    ``chunk_size=None`` streams word by word with the leading space kept (`"Hello"`, `" world"`),
    which is how OpenAI's tokens look; an int streams fixed-size character slices; ``chunks``
    gives the exact pieces (their concatenation is the text).
    """

    text: str = ""
    chunk_size: int | None = None
    chunks: Sequence[str] | None = None
    finish_reason: FinishReason = "stop"

    def pieces(self) -> list[str]:
        if self.chunks is not None:
            return [c for c in self.chunks if c]
        return split_text(self.text, self.chunk_size)

    @property
    def full_text(self) -> str:
        return "".join(self.pieces())


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call. ``arguments`` may be a mapping (JSON-encoded for you) or raw text,
    which is how a test sends *invalid* JSON arguments. ``id`` defaults to a unique ``call_…``."""

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    id: str | None = None

    @property
    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(dict(self.arguments))


@dataclass(frozen=True, slots=True)
class ToolCallsReply:
    """One or more (parallel) tool calls, streamed as OpenAI does: per call, a first delta with
    ``index``, ``id``, ``type`` and ``function.name`` (``arguments: ""``), then argument fragments
    of ``argument_chunk_size`` characters. ``text`` is optional content streamed before the calls."""

    calls: Sequence[ToolCall]
    text: str = ""
    argument_chunk_size: int = 8
    finish_reason: FinishReason = "tool_calls"


ChatReply = TextReply | ToolCallsReply


# --- faults ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusFault:
    """Answer with an HTTP error in OpenAI's error shape. ``retry_after_s`` sets ``retry-after``
    (whole seconds, rounded up) and ``retry-after-ms``, which the SDK honours when ≤ 120 s."""

    status: int = 500
    message: str | None = None
    type: str | None = None
    code: str | None = None
    param: str | None = None
    retry_after_s: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hang:
    """Never answer (no status line) until the client gives up, the fake stops, or ``max_s``
    passes (then a 503): the server side stays bounded even if the client never times out."""

    max_s: float = 30.0


@dataclass(frozen=True, slots=True)
class BrokenStream:
    """Send ``after_chunks`` stream pieces (SSE events, or audio chunks for speech), then cut the
    connection mid-body: the SDK raises ``APIConnectionError``. ``clean=True`` instead ends the
    HTTP body properly but without ``[DONE]`` / finish chunk (a truncated stream the SDK does
    *not* report: your code has to notice the missing ``finish_reason``)."""

    after_chunks: int = 2
    clean: bool = False
    reply: ChatReply | None = None


@dataclass(frozen=True, slots=True)
class BadJSON:
    """Send ``after_chunks`` good chunks, then ``data: {not json``, then end the stream."""

    after_chunks: int = 1
    payload: str = '{"id": "chatcmpl-broken", "choices": [{'
    reply: ChatReply | None = None


@dataclass(frozen=True, slots=True)
class StreamError:
    """Send ``after_chunks`` good chunks, then ``data: {"error": {...}}`` (the SDK raises
    ``APIError``), then end the stream."""

    after_chunks: int = 1
    message: str = "The server had an error while processing your request."
    type: str = "server_error"
    code: str | None = None
    reply: ChatReply | None = None


@dataclass(frozen=True, slots=True)
class Slow:
    """Wait ``delay_s`` before answering at all (before the status line), then answer with
    ``reply`` (or what would have been answered). Unlike ``Hang`` it does answer."""

    delay_s: float = 5.0
    reply: ChatReply | None = None


Fault = StatusFault | Hang | BrokenStream | BadJSON | StreamError | Slow
FAULT_TYPES = (StatusFault, Hang, BrokenStream, BadJSON, StreamError, Slow)


def as_chat_reply(item: ChatReply | Fault | str) -> ChatReply | Fault:
    """A bare string in a script means a ``TextReply`` of it."""
    return TextReply(item) if isinstance(item, str) else item


# --- latency -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatLatency:
    """``first_token_s``: after the response headers, before the first chunk (time to first
    token). ``per_token_s``: before each later chunk."""

    first_token_s: float = 0.0
    per_token_s: float = 0.0


@dataclass(frozen=True, slots=True)
class SpeechLatency:
    """``first_byte_s``: before the response starts. Audio then goes out in ``chunk_bytes``
    pieces, paced so it arrives ``realtime_factor`` times faster than it plays (1.0 = real time;
    ``None`` = as fast as the socket allows), or at ``bytes_per_s`` if that is set."""

    first_byte_s: float = 0.0
    realtime_factor: float | None = None
    bytes_per_s: float | None = None
    chunk_bytes: int = 4800

    def chunk_interval_s(self, chunk_len: int, sample_rate: int = 24000) -> float:
        if self.bytes_per_s:
            return chunk_len / self.bytes_per_s
        if self.realtime_factor:
            return chunk_len / (sample_rate * 2) / self.realtime_factor
        return 0.0


# --- chat chunk building ----------------------------------------------------------------

_WORDS = re.compile(r"\s*\S+\s*$|\s*\S+")


def split_text(text: str, chunk_size: int | None = None) -> list[str]:
    """Word pieces with their leading whitespace (trailing whitespace stays on the last piece),
    or ``chunk_size``-character slices. ``"".join(split_text(t)) == t`` always."""
    if not text:
        return []
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        return [text[i : i + chunk_size] for i in range(0, len(text), chunk_size)]
    pieces = _WORDS.findall(text)
    return pieces if pieces else [text]  # whitespace-only text is one piece


def _count_tokens(text: str) -> int:
    """A rough, deterministic token count (words and punctuation): enough for usage figures."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def prompt_tokens(request: Mapping[str, Any]) -> int:
    total = 0
    for message in request.get("messages") or []:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            total += _count_tokens(content) + 4
        elif isinstance(content, list):
            total += 4 + sum(_count_tokens(str(p.get("text", ""))) for p in content if isinstance(p, Mapping))
    return total


def usage_dict(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


@dataclass(slots=True)
class ChatStream:
    """Builds the ``chat.completion.chunk`` sequence for one reply. ``chunks()`` yields dicts in
    the order of services.md §1.3: role chunk, content/tool-call deltas, the ``finish_reason``
    chunk, then (``include_usage``) the ``choices: []`` usage chunk. ``[DONE]`` is the caller's."""

    reply: ChatReply
    completion_id: str
    model: str
    created: int
    include_usage: bool = False
    include_obfuscation: bool = True
    prompt_tokens: int = 0
    completion_tokens: int = field(default=0, init=False)

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = usage
        if self.include_obfuscation:
            seed = f"{self.completion_id}:{len(json.dumps(choices))}".encode()
            chunk["obfuscation"] = hashlib.sha1(seed).hexdigest()[: 4 + len(choices) * 3]
        return chunk

    def _delta(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return self._chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])

    def chunks(self) -> Iterator[dict[str, Any]]:
        reply = self.reply
        pieces = reply.pieces() if isinstance(reply, TextReply) else split_text(reply.text)
        has_text = bool(pieces) or isinstance(reply, TextReply)
        yield self._delta({"role": "assistant", "content": "" if has_text else None, "refusal": None})
        for piece in pieces:
            self.completion_tokens += 1
            yield self._delta({"content": piece})
        if isinstance(reply, ToolCallsReply):
            for index, call in enumerate(reply.calls):
                call_id = call.id or f"call_{self.completion_id[-8:]}_{index}"
                function = {"name": call.name, "arguments": ""}
                start = {"index": index, "id": call_id, "type": "function", "function": function}
                yield self._delta({"tool_calls": [start]})
                args = call.arguments_json
                for fragment in split_text(args, max(1, reply.argument_chunk_size)):
                    self.completion_tokens += 1
                    yield self._delta({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
        yield self._delta({}, finish=reply.finish_reason)
        if self.include_usage:
            yield self._chunk([], usage=usage_dict(self.prompt_tokens, self.completion_tokens))


def build_chat_completion(
    reply: ChatReply, *, completion_id: str, model: str, created: int, prompt_tokens: int = 0
) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` object for a reply."""
    message: dict[str, Any] = {"role": "assistant", "refusal": None, "annotations": []}
    completion = 0
    if isinstance(reply, TextReply):
        message["content"] = reply.full_text
        completion = len(reply.pieces())
    else:
        message["content"] = reply.text or None
        message["tool_calls"] = [
            {
                "id": call.id or f"call_{completion_id[-8:]}_{i}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            for i, call in enumerate(reply.calls)
        ]
        completion = len(split_text(reply.text)) + sum(_count_tokens(c.arguments_json) for c in reply.calls)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}],
        "usage": usage_dict(prompt_tokens, completion),
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


_DEFAULT_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    404: ("invalid_request_error", "model_not_found", "Not found."),
    413: ("invalid_request_error", None, "Request body too large."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def error_body(
    status: int,
    message: str | None = None,
    *,
    type: str | None = None,
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """OpenAI's error JSON: ``{"error": {"message", "type", "param", "code"}}``."""
    default_type, default_code, default_message = _DEFAULT_ERRORS.get(status, ("server_error", None, "Error."))
    return {
        "error": {
            "message": message or default_message,
            "type": type or default_type,
            "param": param,
            "code": code if code is not None else default_code,
        }
    }


# --- SSE framing -------------------------------------------------------------------------


def encode_sse(data: str) -> bytes:
    """One SSE event with a ``data`` field. Multi-line data becomes several ``data:`` lines."""
    lines = re.split(r"\r\n|\r|\n", data)
    return "".join(f"data: {line}\n" for line in lines).encode() + b"\n"


def parse_sse(stream: bytes) -> list[str]:
    """The ``data`` of each event in an SSE byte stream (comments and other fields ignored).

    Used by tests to read back what the fake sent; follows the WHATWG rules the SDK's decoder
    follows: one optional space after the colon is dropped, data lines joined with ``\\n``."""
    events: list[str] = []
    data: list[str] = []
    for line in re.split(r"\r\n|\r|\n", stream.decode()):
        if line == "":
            if data:
                events.append("\n".join(data))
            data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
    return events
