"""ToolsSchema: the tools of a bot, Pipecat's container, turned into OpenAI's ``tools`` list.

Duplicate names are refused: the LLM picks a tool by name, so two tools of one name mean one
of them can never be called.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from phonewire.adapters.schemas.function_schema import FunctionSchema
from phonewire.exceptions import ConfigurationError

__all__ = ["ToolsSchema"]


class ToolsSchema:
    def __init__(self, standard_tools: Iterable[FunctionSchema] = ()) -> None:
        tools = list(standard_tools)
        seen: set[str] = set()
        for tool in tools:
            if not isinstance(tool, FunctionSchema):
                raise ConfigurationError(f"ToolsSchema(standard_tools=...): {tool!r} is not a FunctionSchema")
            if tool.name in seen:
                raise ConfigurationError(f"ToolsSchema: two tools are named {tool.name!r}")
            seen.add(tool.name)
        self._standard_tools = tools

    @property
    def standard_tools(self) -> list[FunctionSchema]:
        return list(self._standard_tools)

    def to_openai_tools(self) -> list[dict[str, Any]]:
        """OpenAI Chat Completions ``tools``: ``[{"type": "function", "function": {...}}, ...]``."""
        return [{"type": "function", "function": t.to_default_dict()} for t in self._standard_tools]

    def __len__(self) -> int:
        return len(self._standard_tools)

    def __repr__(self) -> str:
        return f"ToolsSchema({[t.name for t in self._standard_tools]})"
