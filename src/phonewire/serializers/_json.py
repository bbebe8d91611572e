"""Shared parsing helpers for JSON providers: every failure becomes a RemoteProtocolError."""

from __future__ import annotations

import binascii
import json
from json.scanner import make_scanner
from typing import Any

from phonewire.exceptions import RemoteProtocolError

__all__ = ["b64decode", "b64encode", "field", "load_object", "optional_str"]

#: The C scanner behind ``json.loads``, called directly: ``loads`` wraps it in three Python
#: calls and two regex matches, a fifth of the cost of parsing a 330-byte media message.
_scan_once = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed: a "context"
_JSON_SPACE = " \t\n\r"


def load_object(data: str | bytes, provider: str) -> dict[str, Any]:
    """Parse a text frame into a JSON object, or raise RemoteProtocolError."""
    if isinstance(data, bytes | bytearray | memoryview):
        raise RemoteProtocolError(f"{provider}: binary frame where a JSON text frame was expected", close_code=1003)
    try:
        if type(data) is str and data[:1] == "{":
            obj, end = _scan_once(data, 0)
            if end != len(data) and data[end:].strip(_JSON_SPACE):
                raise ValueError("extra data")
        else:
            obj = json.loads(data)
    except (ValueError, RecursionError, StopIteration) as exc:
        kind = "JSONDecodeError" if isinstance(exc, StopIteration) else type(exc).__name__
        raise RemoteProtocolError(f"{provider}: invalid JSON ({kind})") from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError(f"{provider}: JSON message is a {type(obj).__name__}, not an object")
    return obj


def field(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], provider: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind):
        raise RemoteProtocolError(f"{provider}: field {key!r} missing or not {getattr(kind, '__name__', kind)}")
    return value


def optional_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def b64decode(payload: Any, provider: str) -> bytes:
    if not isinstance(payload, str):
        raise RemoteProtocolError(f"{provider}: media payload is not a base64 string")
    try:
        return binascii.a2b_base64(payload, strict_mode=True)
    except (binascii.Error, ValueError):
        raise RemoteProtocolError(f"{provider}: media payload is not valid base64") from None


def b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")
