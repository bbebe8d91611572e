"""Lenient readers for values that providers type loosely (Exotel, Vonage, raw PCM clients).

Exotel sends every number as a string, Vonage sends numbers, custom clients send either; custom
parameters arrive as arbitrary JSON. These helpers accept the reasonable spellings and turn
anything else into a ``RemoteProtocolError`` whose message never echoes more than a few
characters of the input.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from phonewire.exceptions import RemoteProtocolError
from phonewire.frames import KeypadEntry

__all__ = ["count", "json_text", "keypad", "media_type", "preview", "text_params"]

_DECIMAL = re.compile(r"[0-9]{1,9}")


def preview(value: Any, width: int = 16) -> str:
    """A short, safe rendering of untrusted input for error messages."""
    if isinstance(value, str):
        return repr(value[:width])
    return type(value).__name__


def count(value: Any) -> int | None:
    """A non-negative integer given as a number or a decimal string; None if absent or unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 1_000_000_000 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and 0 <= value < 1e9 else None
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        return int(value.strip())
    return None


def keypad(value: Any, provider: str) -> KeypadEntry:
    """One DTMF key from a one-character string (any case) or a single-digit number."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
        value = str(value)
    if isinstance(value, str) and len(value) == 1:
        with contextlib.suppress(ValueError):
            return KeypadEntry(value.upper())
    raise RemoteProtocolError(f"{provider}: invalid DTMF digit {preview(value, 4)}")


def json_text(value: Any, provider: str) -> str:
    """Strings as they are; any other JSON value as compact JSON text."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        raise RemoteProtocolError(f"{provider}: parameter value cannot be represented as text") from None


def text_params(obj: Any, provider: str, *, skip: frozenset[str] = frozenset()) -> dict[str, str]:
    """A JSON object of custom parameters as ``dict[str, str]`` (a new dict; input untouched)."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise RemoteProtocolError(f"{provider}: custom parameters are a {type(obj).__name__}, not an object")
    return {str(k): json_text(v, provider) for k, v in obj.items() if k not in skip}


def media_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a content type such as ``audio/l16;rate=16000`` into ("audio/l16", {"rate": "16000"})."""
    head, *rest = value.split(";")
    params: dict[str, str] = {}
    for item in rest:
        key, _, val = item.partition("=")
        params[key.strip().lower()] = val.strip().strip('"')
    return head.strip().lower(), params
