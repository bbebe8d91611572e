"""Reading provider JSON: one strict policy, and every failure a ``RemoteProtocolError``.

The serializers and provider detection read peer input only through these functions. The policy
(also in docs/architecture.md):

* **Identifiers are JSON strings.** Call, stream and account ids, phone numbers, mark and
  checkpoint names, DTMF digits and codec names are documented as strings by every provider
  (protocols.md): ``text`` returns a string, None when the field is absent or null, and raises
  for anything else (a number, a bool, an object). No coercion: ``3`` is not the call ``"3"``.
* **Counters and durations are the documented exception.** Providers disagree on their type
  (Twilio, Telnyx and Exotel send ``"5"``, Plivo ``5``, Vonage a number for ``duration``), so
  ``counter`` takes an int, an integral float or a digit string and raises otherwise, and
  ``count`` (an optional value such as a key press's duration) returns None when unusable
  instead of failing the message.
* **Custom parameters are user metadata**, so they are kept, not refused: strings as they are,
  other scalars and containers as compact JSON text, nulls dropped (``param_text``).
* Error messages never echo more than a few characters of the input (``preview``).

The transport logs and counts each ``RemoteProtocolError`` and carries on with the next message.
"""

from __future__ import annotations

import binascii
import contextlib
import json
import re
from json.scanner import make_scanner
from typing import Any

from phonewire.exceptions import RemoteProtocolError
from phonewire.frames import InputDTMFFrame, KeypadEntry

__all__ = [
    "DTMF_DIGITS",
    "MAX_TEXT",
    "b64decode",
    "b64encode",
    "count",
    "counter",
    "dtmf_frame",
    "field",
    "keypad",
    "load_object",
    "media_type",
    "param_text",
    "parse_content_type",
    "parse_key_values",
    "preview",
    "text",
    "text_params",
]

#: Keys a telephone keypad (and RFC 4733) can send.
DTMF_DIGITS = frozenset("0123456789*#ABCD")

#: Longest provider-supplied text we keep in an event (error titles, details).
MAX_TEXT = 500

#: Digit strings longer than this are not counters; they are garbage (and int() of huge
#: strings is slow or raises).
_MAX_COUNTER_DIGITS = 18
_DECIMAL = re.compile(r"[0-9]{1,9}")
_PAIR_SEPARATORS = re.compile(r"[;,\n]")

#: The C scanner behind ``json.loads``, called directly: ``loads`` wraps it in three Python
#: calls and two regex matches, a fifth of the cost of parsing a 330-byte media message.
_scan_once = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed: a "context"
_JSON_SPACE = " \t\n\r"


def preview(value: Any, width: int = 16) -> str:
    """A short, safe rendering of untrusted input for error messages."""
    if isinstance(value, str):
        return repr(value[:width])
    return type(value).__name__


# --- messages ----------------------------------------------------------------------------


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
    """``obj[key]``, which must be present and of ``kind``."""
    value = obj.get(key)
    if not isinstance(value, kind):
        raise RemoteProtocolError(f"{provider}: field {key!r} missing or not {getattr(kind, '__name__', kind)}")
    return value


def b64decode(payload: Any, provider: str) -> bytes:
    """A base64 media payload (strict: no stray characters)."""
    if not isinstance(payload, str):
        raise RemoteProtocolError(f"{provider}: media payload is not a base64 string")
    try:
        return binascii.a2b_base64(payload, strict_mode=True)
    except (binascii.Error, ValueError):
        raise RemoteProtocolError(f"{provider}: media payload is not valid base64") from None


def b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


# --- identifiers: strings only -------------------------------------------------------------


def text(obj: dict[str, Any], key: str, provider: str) -> str | None:
    """``obj[key]`` if it is a string, None if absent or null; anything else is an error."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise RemoteProtocolError(f"{provider}: field {key!r} is not a string")


def keypad(value: Any, provider: str) -> KeypadEntry:
    """One DTMF key from a one-character string (``a``-``d`` are read as ``A``-``D``)."""
    if isinstance(value, str) and len(value) == 1:
        with contextlib.suppress(ValueError):
            return KeypadEntry(value.upper())
    raise RemoteProtocolError(f"{provider}: invalid DTMF digit {preview(value, 8)}")


def dtmf_frame(digit: Any, provider: str, metadata: dict[str, Any] | None = None) -> InputDTMFFrame:
    """An InputDTMFFrame for one key (see ``keypad``)."""
    return InputDTMFFrame(button=keypad(digit, provider), metadata=metadata)


# --- numbers: the documented exception -------------------------------------------------------


def counter(value: Any, name: str, provider: str) -> int | None:
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
        digits = value.strip()
        if not (digits.isascii() and digits.isdigit() and len(digits) <= _MAX_COUNTER_DIGITS):
            raise RemoteProtocolError(f"{provider}: {name} is not numeric")
        number = int(digits)
    else:
        raise RemoteProtocolError(f"{provider}: {name} is not a number")
    if number < 0:
        raise RemoteProtocolError(f"{provider}: {name} is negative")
    return number


def count(value: Any) -> int | None:
    """An optional non-negative integer (a number or a decimal string); None if absent or unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 1_000_000_000 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and 0 <= value < 1e9 else None
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        return int(value.strip())
    return None


# --- custom parameters: user metadata, kept as text -----------------------------------------


def param_text(value: Any) -> str | None:
    """A parameter value as text: strings as they are, other JSON values as compact JSON; None
    for null (and for what JSON cannot render, which parsed input never holds)."""
    if isinstance(value, str):
        return value
    if value is None:
        return None
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return None


def text_params(obj: Any, provider: str, *, skip: frozenset[str] = frozenset()) -> dict[str, str]:
    """A JSON object of custom parameters as ``dict[str, str]`` (a new dict; input untouched).

    Null values are dropped; anything but an object (or null) is a protocol error."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise RemoteProtocolError(f"{provider}: custom parameters are a {type(obj).__name__}, not an object")
    params: dict[str, str] = {}
    for key, value in obj.items():
        if key in skip:
            continue
        item = param_text(value)
        if item is not None:
            params[str(key)] = item
    return params


def parse_key_values(value: Any) -> dict[str, str]:
    """Parse custom headers given as ``k=v;k=v``, ``k=v,k=v`` or a JSON object (string or dict).

    Defensive by design: it is user metadata, so pieces that cannot be understood (a piece
    without ``=``, a non-string, non-object value, a null) are skipped rather than failing the
    whole message. Nested JSON values are kept as their compact JSON text.
    """
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            decoded = None
        if isinstance(decoded, dict):
            value = decoded
    if isinstance(value, dict):
        return text_params(value, "")
    result: dict[str, str] = {}
    if isinstance(value, str):
        for piece in _PAIR_SEPARATORS.split(value):
            key, sep, item = piece.partition("=")
            key = key.strip()
            if sep and key:
                result[key] = item.strip()
    return result


# --- content types --------------------------------------------------------------------------


def media_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a content type such as ``audio/l16;rate=16000`` into ("audio/l16", {"rate": "16000"})."""
    head, *rest = value.split(";")
    params: dict[str, str] = {}
    for item in rest:
        key, _, val = item.partition("=")
        params[key.strip().lower()] = val.strip().strip('"')
    return head.strip().lower(), params


def parse_content_type(value: str, aliases: dict[str, str]) -> tuple[str | None, int | None]:
    """``"audio/x-l16;rate=16000"`` -> ("l16", 16000) using ``aliases`` (lower-case names).

    Returns (None, None) for an unknown encoding, and a None rate when none is given or the
    rate parameter is not a plain number.
    """
    mime, params = media_type(value)
    raw = params.get("rate", "")
    rate = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 6 else None
    return aliases.get(mime), rate
