"""FunctionSchema: one tool the LLM may call, described once, in Pipecat's shape.

``to_default_dict()`` gives the OpenAI ``function`` object (name, description, JSON-Schema
parameters). Names are checked here, at construction, against OpenAI's rule (a-z A-Z 0-9 _ -,
at most 64 characters): a bad name otherwise surfaces as a 400 from the API in the middle of a
call, long after the bot was written.
"""

from __future__ import annotations

import re
from typing import Any

from phonewire.exceptions import ConfigurationError

__all__ = ["FunctionSchema", "validate_function_name"]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def validate_function_name(name: object) -> str:
    """Return ``name`` if OpenAI accepts it as a function name, else raise ConfigurationError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"function name {name!r} is invalid: use 1-64 characters from a-z, A-Z, 0-9, '_' and '-'"
        )
    return name


class FunctionSchema:
    """A function tool: ``properties`` is a JSON-Schema ``properties`` object, ``required``
    the names among them the LLM must always give."""

    def __init__(
        self,
        name: str,
        description: str,
        properties: dict[str, Any] | None = None,
        required: list[str] | None = None,
    ) -> None:
        self._name = validate_function_name(name)
        self._description = description
        self._properties = dict(properties or {})
        self._required = list(required or [])
        missing = [r for r in self._required if r not in self._properties]
        if missing:
            raise ConfigurationError(f"function {name!r}: required {missing} not among its properties")

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str:
        return self._description

    @property
    def properties(self) -> dict[str, Any]:
        return self._properties

    @property
    def required(self) -> list[str]:
        return self._required

    def to_default_dict(self) -> dict[str, Any]:
        """The OpenAI ``function`` object (what goes under ``{"type": "function", "function": ...}``)."""
        return {
            "name": self._name,
            "description": self._description,
            "parameters": {"type": "object", "properties": self._properties, "required": self._required},
        }

    def __repr__(self) -> str:
        return f"FunctionSchema(name={self._name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FunctionSchema) and self.to_default_dict() == other.to_default_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable dicts inside: not hashable
