"""LLMContext: the conversation so far, in OpenAI's chat-message format.

OpenAI's message dicts are phonewire's universal format (as in Pipecat's ``LLMContext``): every
OpenAI-compatible server reads them as they are, and an adapter for another API converts from
one well-known shape. The context is shared by reference - the aggregators write it, the LLM
service reads it when it runs - so ``messages`` is the live list and ``get_messages()`` a copy.
It is not bounded: a phone call's history is small, and trimming it is a policy the bot owns
(``set_messages``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from phonewire.adapters.schemas.tools_schema import ToolsSchema
from phonewire.exceptions import ConfigurationError

__all__ = ["LLMContext", "LLMContextMessage"]

LLMContextMessage = dict[str, Any]


class LLMContext:
    def __init__(
        self,
        messages: Iterable[LLMContextMessage] | None = None,
        tools: ToolsSchema | list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
    ) -> None:
        self._messages: list[LLMContextMessage] = []
        self._tools: list[dict[str, Any]] | None = None
        self._tool_choice: str | dict[str, Any] | None = None
        if messages is not None:
            self.set_messages(messages)
        self.set_tools(tools)
        self.set_tool_choice(tool_choice)

    # --- messages ----------------------------------------------------------------------

    @property
    def messages(self) -> list[LLMContextMessage]:
        """The live list (mutations change the context)."""
        return self._messages

    def get_messages(self) -> list[LLMContextMessage]:
        """A deep copy: safe to send, log or change."""
        return copy.deepcopy(self._messages)

    def add_message(self, message: LLMContextMessage) -> None:
        self._messages.append(_checked(message))

    def add_messages(self, messages: Iterable[LLMContextMessage]) -> None:
        self._messages.extend(_checked(m) for m in messages)

    def set_messages(self, messages: Iterable[LLMContextMessage]) -> None:
        self._messages[:] = [_checked(m) for m in messages]

    # --- tools -------------------------------------------------------------------------

    @property
    def tools(self) -> list[dict[str, Any]] | None:
        """OpenAI ``tools`` (function-tool dicts), or None when the LLM has none."""
        return self._tools

    def set_tools(self, tools: ToolsSchema | list[dict[str, Any]] | None) -> None:
        if tools is None:
            self._tools = None
        elif isinstance(tools, ToolsSchema):
            self._tools = tools.to_openai_tools() or None
        elif isinstance(tools, list) and all(isinstance(t, dict) for t in tools):
            self._tools = [dict(t) for t in tools] or None
        else:
            raise ConfigurationError(f"tools must be a ToolsSchema or a list of OpenAI tool dicts, not {tools!r}")

    @property
    def tool_choice(self) -> str | dict[str, Any] | None:
        return self._tool_choice

    def set_tool_choice(self, tool_choice: str | dict[str, Any] | None) -> None:
        if isinstance(tool_choice, str) and tool_choice not in ("none", "auto", "required"):
            raise ConfigurationError(f"tool_choice {tool_choice!r}: use 'none', 'auto', 'required' or a dict")
        self._tool_choice = tool_choice

    # --- serialising -------------------------------------------------------------------

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy (messages, tools, tool_choice): for logs, tests, storage.

        Values that JSON cannot hold (a bot put an object in a message) become strings, so
        this never raises on a live call.
        """
        data = {"messages": self._messages, "tools": self._tools, "tool_choice": self._tool_choice}
        result: dict[str, Any] = json.loads(json.dumps(data, default=str))
        return result

    def __repr__(self) -> str:
        return f"LLMContext({len(self._messages)} messages, {len(self._tools or [])} tools)"


def _checked(message: Any) -> LLMContextMessage:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise ConfigurationError(f"a context message is a dict with a 'role', not {message!r}")
    return message
