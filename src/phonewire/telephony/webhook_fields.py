"""Reading a call webhook's fields: bounded, parsed once, and only from what the provider signed.

Why: the webhook runs before (and for the signature check) any authentication, so anything it
does is available to anyone on the internet. Bodies are capped at ``MAX_WEBHOOK_BODY_BYTES``
and at ``MAX_FORM_FIELDS`` fields, so the work one request causes on the event loop is bounded.
And the call id a stream token is minted for must come from content the signature covers:
for Telnyx that is the body alone (its signature is ``timestamp|body``), never the query string.

Two readings of one signed request must never name two calls, so:

* a repeated field name (``uuid=victim&uuid=genuine``) is refused (400) in every form and
  query, and a repeated key in a JSON object too: a signature (or a Vonage ``payload_hash``
  over a JSON object built from the query) may cover one value while the id is read from
  another;
* the format of a body is decided by the body, never by the unsigned ``Content-Type``
  (``parse_signed_body``): a body whose first non-space byte is ``{`` or ``[`` is JSON, any
  other is a form, and a Content-Type that contradicts the body is refused (400). Otherwise a
  signed JSON body re-sent as ``application/x-www-form-urlencoded`` is split on ``&`` and a
  caller-influenced string value (``"from": "sip:a&CallControlId=v3:victim&b=@x"``) injects
  fields.

Pure functions, no I/O: the route reads the body (see ``server/webhooks.py``) and passes bytes.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from phonewire.serializers import _ids

__all__ = [
    "MAX_FORM_FIELDS",
    "MAX_WEBHOOK_BODY_BYTES",
    "CallFields",
    "MultiFields",
    "WebhookBodyError",
    "call_fields",
    "first",
    "invalid_call_reason",
    "parse_body",
    "parse_form",
    "parse_json_object",
    "parse_pairs",
    "parse_signed_body",
]

MAX_WEBHOOK_BODY_BYTES = 64 * 1024
"""Largest webhook body read. A provider's call webhook is a few KiB (a Twilio voice webhook
with every optional field is under 2 KiB, a Telnyx Call Control event under 4 KiB); 64 KiB
leaves ample headroom while bounding what an unsigned request can make the event loop do."""

MAX_FORM_FIELDS = 256
"""Twilio's richest voice webhook has about 40 fields; more than 256 is not a provider."""

MultiFields = dict[str, list[str]]
"""Form or query fields, every value of a repeated name kept (signatures cover them all)."""

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


class WebhookBodyError(ValueError):
    """The body is too large or cannot be parsed; answer ``status`` and log ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CallFields:
    """What a verified webhook says about the call; every value is text the signature covers."""

    call_id: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    account_id: str | None = None


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_pairs(text: bytes | str) -> list[tuple[str, str]]:
    """Decode ``a=1&b=2`` into (name, value) pairs in received order, bounded to
    ``MAX_FORM_FIELDS``; a name that occurs twice is refused.

    Raises:
        WebhookBodyError: 413 for too many fields, 400 for a repeated name.
    """
    decoded = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    try:
        pairs = urllib.parse.parse_qsl(decoded, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        raise WebhookBodyError(413, f"more than {MAX_FORM_FIELDS} form fields") from None
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            # One value may be what the signature covers and another what we would read.
            raise WebhookBodyError(400, "repeated field name")
        seen.add(name)
    return pairs


def parse_form(text: bytes | str) -> MultiFields:
    """Decode ``a=1&b=2`` (bounded to ``MAX_FORM_FIELDS``; each name at most once) as
    ``{name: [value]}``, the shape the signature functions take.

    Raises:
        WebhookBodyError: as ``parse_pairs``.
    """
    return {name: [value] for name, value in parse_pairs(text)}


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError("repeated key")
        obj[key] = value
    return obj


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object (no key repeated in any object).

    Raises:
        WebhookBodyError: 400 for anything that is not a JSON object (deep nesting and
            repeated keys included).
    """
    try:
        value = json.loads(body, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError):
        raise WebhookBodyError(400, "body is not valid JSON (or repeats a key)") from None
    if not isinstance(value, dict):
        raise WebhookBodyError(400, "JSON body is not an object")
    return value


def parse_body(content_type: str | None, body: bytes) -> tuple[MultiFields | None, dict[str, Any] | None]:
    """(form fields, JSON object): at most one is not None, chosen by the Content-Type.

    An empty body or another media type gives (None, None): no fields at all.

    Raises:
        WebhookBodyError: as ``parse_form`` and ``parse_json_object``.
    """
    if len(body) > MAX_WEBHOOK_BODY_BYTES:
        raise WebhookBodyError(413, f"body over {MAX_WEBHOOK_BODY_BYTES} bytes")
    kind = _media_type(content_type)
    if not body:
        return None, None
    if kind == FORM:
        return parse_form(body), None
    if kind == JSON or kind.endswith("+json"):
        return None, parse_json_object(body)
    return None, None


def _looks_like_json(body: bytes) -> bool:
    return body.lstrip(b" \t\r\n")[:1] in (b"{", b"[")


def parse_signed_body(
    content_type: str | None, body: bytes, *, accepts: frozenset[str]
) -> tuple[MultiFields | None, dict[str, Any] | None]:
    """(form fields, JSON object) of a body, its format decided by the body itself.

    A body whose first non-space byte is ``{`` or ``[`` is JSON; any other non-empty body is
    a form. ``accepts`` names what the provider documents (``"form"``, ``"json"``); another
    format is refused. A declared Content-Type of a form or JSON that contradicts the body is
    refused too (it is unsigned: it may not choose how signed bytes are read). An empty body
    gives (None, None).

    Raises:
        WebhookBodyError: 413 over ``MAX_WEBHOOK_BODY_BYTES``; 400 for a contradiction, a
            format the provider does not send, or a body that does not parse.
    """
    if len(body) > MAX_WEBHOOK_BODY_BYTES:
        raise WebhookBodyError(413, f"body over {MAX_WEBHOOK_BODY_BYTES} bytes")
    if not body:
        return None, None
    kind = "json" if _looks_like_json(body) else "form"
    declared = _media_type(content_type)
    if declared == FORM and kind == "json":
        raise WebhookBodyError(400, "a JSON body declared as a form")
    if (declared == JSON or declared.endswith("+json")) and kind == "form":
        raise WebhookBodyError(400, "a JSON Content-Type on a body that is not JSON")
    if kind not in accepts:
        raise WebhookBodyError(400, f"{kind} body where the provider sends {'/'.join(sorted(accepts))}")
    if kind == "json":
        return None, parse_json_object(body)
    return parse_form(body), None


def first(fields: Mapping[str, Sequence[str]] | None, *names: str) -> str | None:
    """The first non-empty value of the first name present."""
    for name in names:
        values = (fields or {}).get(name) or ()
        for value in values:
            if value:
                return value
    return None


def _text(obj: Any, *path: str) -> str | None:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj if isinstance(obj, str) and obj else None


def call_fields(provider: str, form: MultiFields | None, data: dict[str, Any] | None) -> CallFields:
    """Call id, numbers and account from a webhook's *signed* fields, per provider.

    ``form`` is the signed form (or, for a GET whose query is signed, the query); ``data`` a
    signed JSON body. Telnyx Call Control sends JSON with ``data.payload.call_control_id``;
    TeXML sends a form with ``CallSid`` (``CallControlId`` also accepted). Vonage sends ``uuid``,
    ``from``, ``to`` (query on GET, JSON on POST).
    """
    if provider == "telnyx" and data is not None:
        payload = data.get("data", {}).get("payload") if isinstance(data.get("data"), dict) else None
        return CallFields(
            call_id=_text(payload, "call_control_id"),
            from_number=_text(payload, "from"),
            to_number=_text(payload, "to"),
        )
    if provider == "vonage" and data is not None:
        return CallFields(call_id=_text(data, "uuid"), from_number=_text(data, "from"), to_number=_text(data, "to"))
    if provider == "vonage":
        return CallFields(call_id=first(form, "uuid"), from_number=first(form, "from"), to_number=first(form, "to"))
    ids = {
        "twilio": ("CallSid",),
        "telnyx": ("CallControlId", "CallSid"),
        "plivo": ("CallUUID",),
        "exotel": ("CallSid",),
    }.get(provider, ())
    return CallFields(
        call_id=first(form, *ids),
        from_number=first(form, "From"),
        to_number=first(form, "To"),
        account_id=first(form, "AccountSid") if provider == "twilio" else None,
    )


#: The call id format per provider (``serializers/_ids.py``): a token is minted only for an id
#: of that shape, the shape the REST hang-up will accept. Twilio's signature scheme is
#: ambiguous (``name + value`` concatenated without separators: a ``CallSid`` value may
#: swallow the next field), so the shape check is what pins the id to the field it was.
_CALL_ID_FORMATS: dict[str, re.Pattern[str]] = {
    "twilio": _ids.TWILIO_CALL_SID,
    "telnyx": _ids.TELNYX_CALL_CONTROL_ID,
    "plivo": _ids.UUID,
    "vonage": _ids.UUID,
    "exotel": _ids.GENERIC,
}


def invalid_call_reason(provider: str, call: CallFields) -> str | None:
    """Why ``call``'s ids cannot be minted for (a reason that never echoes the value), or None.

    The call id must match its provider's format (``GENERIC`` for a provider without one) and
    a Twilio ``AccountSid``, which the token binds and the hang-up URL names, Twilio's.
    """
    reason = _ids.invalid_id_reason("call id", call.call_id, _CALL_ID_FORMATS.get(provider, _ids.GENERIC))
    if reason is None and provider == "twilio":
        reason = _ids.invalid_id_reason("AccountSid", call.account_id, _ids.TWILIO_ACCOUNT_SID)
    return reason
