"""Chat Completions, sans-I/O: the request a context becomes, and the chunks a reply streams back.

Nothing here touches a socket or a clock, so every quirk of the OpenAI-compatible servers
(services.md §1.7) is a unit test away: tool calls without ``index`` (Gemini), whole calls in
one chunk (Ollama), two calls sharing ``index`` 0 (a relay), ``finish_reason: "stop"`` with tool
calls (Gemini), usage in every chunk (vLLM) or in ``x_groq.usage`` (Groq), ``"tool_calls": []``
in every delta (Groq), content and tool calls in one delta, ``reasoning_content`` (never spoken),
a top-level ``{"object": "error"}`` chunk (vLLM), Gemini's ``extra_content`` thought signature
(which must go back unchanged on the next request).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

__all__ = [
    "ChatStreamAssembler",
    "ChatStreamError",
    "Compat",
    "SAMPLING_PARAMS",
    "ToolCallRequest",
    "build_request",
    "compat_for",
    "normalize_tools",
    "usage_tokens",
]

#: Sampling parameters Chat Completions defines; anything else a user sets goes in ``extra_body``.
SAMPLING_PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "stop",
    "service_tier",
    "reasoning_effort",
    "parallel_tool_calls",
    "user",
)
_call_ids = itertools.count(1)


class ChatStreamError(Exception):
    """A chunk that is an error, not a reply (vLLM's top-level error object, an ``error`` key)."""


@dataclass(frozen=True, slots=True)
class Compat:
    """What one kind of server needs of a request. ``supports_stream_options`` None: try it and
    fall back on a 400 that names it; ``max_temperature``: the Anthropic layer caps it at 1."""

    name: str = "openai"
    supports_stream_options: bool | None = None
    max_temperature: float | None = None


def compat_for(base_url: str | None) -> Compat:
    """Guess the server from its URL; only quirks that change the request live here."""
    host = (urlparse(base_url).hostname or "") if base_url else "api.openai.com"
    if host.endswith("anthropic.com"):
        return Compat("anthropic", supports_stream_options=True, max_temperature=1.0)
    if host.endswith("generativelanguage.googleapis.com"):
        return Compat("gemini", supports_stream_options=True)
    if host.endswith("groq.com"):
        return Compat("groq", supports_stream_options=True)
    if host.endswith("openai.com"):
        return Compat("openai", supports_stream_options=True)
    return Compat("compatible")


def normalize_tools(tools: Any) -> list[dict[str, Any]] | None:
    """OpenAI tool dicts from a list of them, Pipecat's ``ToolsSchema`` (``standard_tools`` of
    ``FunctionSchema`` with ``to_default_dict()``), or nothing (None, NOT_GIVEN, empty)."""
    if hasattr(tools, "to_openai_tools"):
        return list(tools.to_openai_tools()) or None
    if tools is None or not isinstance(tools, list | tuple) and not hasattr(tools, "standard_tools"):
        return None
    items = tools.standard_tools if hasattr(tools, "standard_tools") else tools
    out: list[dict[str, Any]] = []
    for item in items:
        if hasattr(item, "to_default_dict"):
            out.append({"type": "function", "function": item.to_default_dict()})
        elif isinstance(item, Mapping):
            out.append(dict(item))
    return out or None


def build_request(
    *,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    tools: Any = None,
    tool_choice: Any = None,
    params: Mapping[str, Any] | None = None,
    system_instruction: str | None = None,
    include_usage: bool = True,
    compat: Compat = Compat(),
    extra_content: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``client.chat.completions.create``: JSON-ready, ``stream=True``.

    ``params`` None values are left out; unknown keys (``top_k``, ``min_p``...) go in
    ``extra_body``. ``extra_content`` maps tool_call_id to the ``extra_content`` the server sent
    with that call (Gemini's thought signature), put back where the context lacks it."""
    msgs = [dict(m) for m in messages]
    if system_instruction and not any(m.get("role") in ("system", "developer") for m in msgs):
        msgs.insert(0, {"role": "system", "content": system_instruction})
    if extra_content:
        msgs = [_with_extra_content(m, extra_content) for m in msgs]
    request: dict[str, Any] = {"model": model, "messages": msgs, "stream": True}
    if include_usage and compat.supports_stream_options is not False:
        request["stream_options"] = {"include_usage": True}
    extra: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if key == "extra" and isinstance(value, Mapping):
            extra.update(value)
        elif key in SAMPLING_PARAMS:
            request[key] = value
        else:
            extra[key] = value
    if compat.max_temperature is not None and "temperature" in request:
        request["temperature"] = min(float(request["temperature"]), compat.max_temperature)
    openai_tools = normalize_tools(tools)
    if openai_tools:
        request["tools"] = openai_tools
        if tool_choice is not None and _given(tool_choice):
            request["tool_choice"] = tool_choice
    if extra:
        request["extra_body"] = extra
    return request


def _given(value: Any) -> bool:
    return type(value).__name__ not in ("NotGiven", "Omit")


def _with_extra_content(message: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    calls = message.get("tool_calls")
    if message.get("role") != "assistant" or not calls:
        return message
    fixed = []
    for call in calls:
        if isinstance(call, Mapping) and "extra_content" not in call and call.get("id") in extra:
            call = {**call, "extra_content": extra[call["id"]]}
        fixed.append(call)
    return {**message, "tool_calls": fixed}


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """One tool call as streamed: ``arguments_raw`` exactly as sent (it goes back in the
    assistant message), ``extra`` any non-standard fields of the call (``extra_content``)."""

    id: str
    name: str
    arguments_raw: str
    extra: Mapping[str, Any] | None = None

    def parse_arguments(self) -> tuple[dict[str, Any] | None, str | None]:
        """(arguments, None), or (None, why) for JSON that is invalid or not an object."""
        text = self.arguments_raw.strip() or "{}"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return None, f"invalid JSON arguments ({exc.msg} at char {exc.pos})"
        if not isinstance(value, dict):
            return None, f"arguments must be a JSON object, got {type(value).__name__}"
        return value, None

    def as_message_call(self) -> dict[str, Any]:
        """The entry of the assistant message's ``tool_calls`` for this call."""
        call: dict[str, Any] = {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments_raw},
        }
        if self.extra:
            call.update(self.extra)
        return call


@dataclass(slots=True)
class _Slot:
    id: str | None = None
    name: str = ""
    args: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


_STANDARD_CALL_KEYS = frozenset({"index", "id", "type", "function"})


class ChatStreamAssembler:
    """Feeds on decoded ``chat.completion.chunk`` dicts; ``feed`` returns the text to speak.

    Tool calls follow services.md §1.3: every entry of ``delta.tool_calls`` (not just the
    first), slot by ``index`` (its list position when absent), a new slot when a new ``id``
    appears at a used index, ``id``/``name`` set (not concatenated), arguments appended; at the
    end collected calls are calls whatever ``finish_reason`` says. Usage: the last one seen.
    """

    def __init__(self) -> None:
        self._by_index: dict[int, _Slot] = {}
        self._slots: list[_Slot] = []
        self._choice: int | None = None
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.chunks = 0
        self.text_chars = 0

    @property
    def has_tool_calls(self) -> bool:
        return bool(self._slots)

    def feed(self, chunk: Mapping[str, Any]) -> str:
        """Take one chunk; returns its text ("" when it has none). Raises ChatStreamError."""
        if chunk.get("object") == "error" or chunk.get("error"):
            raise ChatStreamError(_error_message(chunk))
        self.chunks += 1
        self.model = chunk.get("model") or self.model
        self._take_usage(chunk)
        text: list[str] = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, Mapping):
                continue
            index = choice.get("index", 0)
            if self._choice is None:
                self._choice = index
            if index != self._choice:
                continue  # n > 1 is never asked for; a second choice is not ours to speak
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                text.append(content)
            self._take_tool_calls(delta.get("tool_calls"))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        out = "".join(text)
        self.text_chars += len(out)
        return out

    def _take_usage(self, chunk: Mapping[str, Any]) -> None:
        usage = chunk.get("usage")
        groq = chunk.get("x_groq")
        if not isinstance(usage, Mapping) and isinstance(groq, Mapping):
            usage = groq.get("usage")
        if isinstance(usage, Mapping):
            self.usage = dict(usage)

    def _take_tool_calls(self, entries: Any) -> None:
        if not isinstance(entries, list):
            return
        for position, entry in enumerate(entries):
            if not isinstance(entry, Mapping):
                continue
            index = entry.get("index")
            index = position if not isinstance(index, int) else index
            call_id = entry.get("id") or None
            slot = self._by_index.get(index)
            if slot is None or (call_id and slot.id and call_id != slot.id):
                slot = self._by_index[index] = _Slot()
                self._slots.append(slot)
            if call_id:
                slot.id = call_id
            function = entry.get("function") or {}
            if function.get("name"):
                slot.name = function["name"]
            if isinstance(function.get("arguments"), str):
                slot.args.append(function["arguments"])
            slot.extra.update({k: v for k, v in entry.items() if k not in _STANDARD_CALL_KEYS and v is not None})

    def tool_calls(self) -> list[ToolCallRequest]:
        """The calls collected so far, in the order they started; missing ids are made up."""
        calls = []
        for slot in self._slots:
            if not slot.id:
                slot.id = f"call_pw{next(_call_ids)}"
            calls.append(ToolCallRequest(slot.id, slot.name, "".join(slot.args), dict(slot.extra) or None))
        return calls


def _error_message(chunk: Mapping[str, Any]) -> str:
    error = chunk.get("error")
    if isinstance(error, Mapping):
        return str(error.get("message") or "error chunk")[:300]
    return str(chunk.get("message") or error or "error chunk")[:300]


def usage_tokens(usage: Mapping[str, Any]) -> dict[str, int | None]:
    """``LLMTokenUsage`` keyword arguments from an OpenAI usage object (details may be absent)."""
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}

    def num(value: Any) -> int:
        return int(value) if isinstance(value, int | float) else 0

    return {
        "prompt_tokens": num(usage.get("prompt_tokens")),
        "completion_tokens": num(usage.get("completion_tokens")),
        "total_tokens": num(usage.get("total_tokens")),
        "cache_read_input_tokens": prompt.get("cached_tokens") if isinstance(prompt, Mapping) else None,
        "reasoning_tokens": completion.get("reasoning_tokens") if isinstance(completion, Mapping) else None,
    }


def collect(chunks: Iterable[Mapping[str, Any]]) -> tuple[str, list[ToolCallRequest], ChatStreamAssembler]:
    """Assemble a whole stream at once (tests and non-streaming callers)."""
    assembler = ChatStreamAssembler()
    text = "".join(assembler.feed(chunk) for chunk in chunks)
    return text, assembler.tool_calls(), assembler
