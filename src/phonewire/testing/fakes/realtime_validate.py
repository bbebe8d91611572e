"""Validate Realtime events against the official SDK's types (``openai.types.realtime``).

Client events (what our service sends) against ``RealtimeClientEventParam`` with unknown keys
refused at any depth; server events (what the fake sends) against ``RealtimeServerEvent`` with
no extra field anywhere and an exact round trip. Same rules as ``openai_validate``.
"""

from __future__ import annotations

from typing import Any

import pydantic
from openai.types.realtime import realtime_client_event_param, realtime_server_event

from phonewire.testing.fakes.openai_validate import OpenAIValidationError, _adapter, _exact, _validate_params

__all__ = ["validate_realtime_client_event", "validate_realtime_server_event"]


def validate_realtime_client_event(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict) or "type" not in event:
        raise OpenAIValidationError("realtime client event: a JSON object with a type is required")
    return _validate_params(event, realtime_client_event_param.RealtimeClientEventParam, f"client {event['type']}")


def validate_realtime_server_event(event: Any) -> Any:
    try:
        model = _adapter(realtime_server_event.RealtimeServerEvent).validate_python(event)
    except pydantic.ValidationError as exc:
        raise OpenAIValidationError(f"server event: {exc}") from exc
    _exact(model, event, f"server {event.get('type')}")
    return model
