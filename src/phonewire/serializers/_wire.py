"""Small parsing and audio helpers shared by the Telnyx and Plivo serializers.

Every parser here raises ``RemoteProtocolError`` (never anything else) on bad input, with a
short message that does not echo the offending value at length.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from phonewire.exceptions import RemoteProtocolError
from phonewire.frames import InputDTMFFrame, KeypadEntry

__all__ = [
    "DTMF_DIGITS",
    "MAX_TEXT",
    "dtmf_frame",
    "l16_from_wire",
    "l16_to_wire",
    "lenient_count",
    "parse_content_type",
    "parse_key_values",
    "scalar_text",
    "strict_text",
]

#: Keys a telephone keypad (and RFC 4733) can send.
DTMF_DIGITS = frozenset("0123456789*#ABCD")

#: Longest provider-supplied text we keep in an event (error titles, details).
MAX_TEXT = 500

#: Digit strings longer than this are not counters; they are garbage (and int() of huge
#: strings is slow or raises).
_MAX_COUNTER_DIGITS = 18


def strict_text(obj: dict[str, Any], key: str, provider: str) -> str | None:
    """``obj[key]`` if it is a string, None if absent or null; anything else is an error."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise RemoteProtocolError(f"{provider}: field {key!r} is not a string")


def scalar_text(value: Any) -> str | None:
    """A JSON scalar as text (``true``, ``3``, ``"x"`` -> ``x``); None for null, objects and arrays."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return None


def lenient_count(value: Any, name: str, provider: str) -> int | None:
    """A sequence number / chunk counter: an int, an integral float or a digit string.

    Absent (None) is allowed. Booleans, negative numbers, fractions, non-numeric strings and
    containers are protocol errors.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise RemoteProtocolError(f"{provider}: {name} is not a number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise RemoteProtocolError(f"{provider}: {name} is not a whole number")
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= _MAX_COUNTER_DIGITS):
            raise RemoteProtocolError(f"{provider}: {name} is not numeric")
        number = int(text)
    else:
        raise RemoteProtocolError(f"{provider}: {name} is not a number")
    if number < 0:
        raise RemoteProtocolError(f"{provider}: {name} is negative")
    return number


def dtmf_frame(digit: Any, provider: str, metadata: dict[str, Any] | None = None) -> InputDTMFFrame:
    """An InputDTMFFrame for one key (``a``-``d`` are accepted as ``A``-``D``)."""
    if not isinstance(digit, str) or len(digit) != 1 or digit.upper() not in DTMF_DIGITS:
        raise RemoteProtocolError(f"{provider}: invalid DTMF digit {str(digit)[:8]!r}")
    return InputDTMFFrame(button=KeypadEntry(digit.upper()), metadata=metadata)


def l16_from_wire(payload: bytes, byte_order: str, provider: str) -> bytes:
    """Wire L16 -> s16le. ``byte_order`` is "big" (RFC 3551 network order) or "little"."""
    if len(payload) % 2:
        raise RemoteProtocolError(f"{provider}: L16 payload has an odd number of bytes")
    if byte_order == "little":
        return payload
    return np.frombuffer(payload, dtype=np.uint16).byteswap().tobytes()


def l16_to_wire(pcm: bytes, byte_order: str) -> bytes:
    """s16le -> wire L16; an odd trailing byte is dropped (half a sample)."""
    if len(pcm) % 2:
        pcm = pcm[:-1]
    if byte_order == "little":
        return bytes(pcm)
    return np.frombuffer(pcm, dtype=np.uint16).byteswap().tobytes()


def parse_content_type(value: str, aliases: dict[str, str]) -> tuple[str | None, int | None]:
    """``"audio/x-l16;rate=16000"`` -> ("l16", 16000) using ``aliases`` (lower-case names).

    Returns (None, None) for an unknown encoding, and a None rate when none is given or the
    rate parameter is not a plain number.
    """
    main, _, params = value.partition(";")
    encoding = aliases.get(main.strip().lower())
    rate: int | None = None
    for param in params.split(";"):
        key, _, raw = param.partition("=")
        raw = raw.strip()
        if key.strip().lower() == "rate" and raw.isascii() and raw.isdigit() and len(raw) <= 6:
            rate = int(raw)
    return encoding, rate


_PAIR_SEPARATORS = re.compile(r"[;,\n]")


def parse_key_values(value: Any) -> dict[str, str]:
    """Parse custom headers given as ``k=v;k=v``, ``k=v,k=v`` or a JSON object (string or dict).

    Defensive by design: it is user metadata, so pieces that cannot be understood (a piece
    without ``=``, a non-string, non-object value, a null) are skipped rather than failing the
    whole message. Nested JSON values are kept as their compact JSON text.
    """
    result: dict[str, str] = {}
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            decoded = None
        if isinstance(decoded, dict):
            value = decoded
    if isinstance(value, dict):
        for key, item in value.items():
            text = scalar_text(item)
            if text is None and isinstance(item, dict | list):
                try:
                    text = json.dumps(item, separators=(",", ":"))
                except (ValueError, RecursionError):
                    text = None
            if text is None:
                continue
            result[str(key)] = text
    elif isinstance(value, str):
        for piece in _PAIR_SEPARATORS.split(value):
            if not piece.strip():
                continue
            key, sep, item = piece.partition("=")
            key = key.strip()
            if not sep or not key:
                continue
            result[key] = item.strip()
    return result
