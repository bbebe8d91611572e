"""Validate ElevenLabs multi-context messages against elevenlabs-python's own pydantic types
(test-only dependency): client messages against ``SendMessageMulti``'s members, server
messages against ``ReceiveMessageMulti``'s (``AudioOutputMulti``, ``FinalOutputMulti``).

The SDK's models allow extra keys, so a misspelt field would pass plain validation; every key
(by its wire alias, recursively) must therefore be one the model declares. Errors have no SDK
type: ``validate_server_message`` checks them against the shape users of the live service
report (``{"message", "error", "code"}``).
"""

from __future__ import annotations

import typing
from typing import Any

__all__ = ["ElevenLabsValidationError", "client_message_type", "validate_client_message", "validate_server_message"]


class ElevenLabsValidationError(AssertionError):
    pass


def client_message_type(message: dict[str, Any]) -> str:
    """Which ``SendMessageMulti`` member a client message is meant to be."""
    if "close_socket" in message:
        return "CloseSocket"
    if "close_context" in message:
        return "CloseContext"
    if "flush" in message and message.get("flush") is True:
        return "FlushContext"
    if message.get("text") == "" and "context_id" in message:
        return "KeepContextAlive"
    if message.get("text") == " " and "context_id" in message:
        return "InitialiseContext"
    return "SendTextMulti"


def validate_client_message(message: dict[str, Any]) -> Any:
    """The SDK model instance for a message our client sends; raises ElevenLabsValidationError."""
    import elevenlabs.types as t

    name = client_message_type(message)
    return _validate(getattr(t, name), message)


def validate_server_message(message: dict[str, Any]) -> Any:
    """The SDK model instance for a message the fake sends (None for an error message)."""
    from elevenlabs.types import AudioOutputMulti, FinalOutputMulti

    if "error" in message:
        if set(message) != {"message", "error", "code"} or not isinstance(message["message"], str):
            raise ElevenLabsValidationError(f"not ElevenLabs' error shape: {sorted(message)}")
        return None
    model = FinalOutputMulti if "isFinal" in message else AudioOutputMulti
    instance = _validate(model, message)
    for key in ("alignment", "normalizedAlignment"):
        value = message.get(key)
        if value is not None:
            lengths = {len(value.get(k) or []) for k in ("chars", "charStartTimesMs", "charDurationsMs")}
            if len(lengths) != 1:
                raise ElevenLabsValidationError(f"{key}: lists of different lengths")
    return instance


def _validate(model: Any, message: dict[str, Any]) -> Any:
    try:
        instance = model.model_validate(message)
    except Exception as exc:
        raise ElevenLabsValidationError(f"{model.__name__}: {exc}") from exc
    _no_unknown_keys(model, message, model.__name__)
    return instance


def _no_unknown_keys(model: Any, value: dict[str, Any], where: str) -> None:
    fields = {(info.alias or name): info for name, info in model.model_fields.items()}
    extra = set(value) - set(fields)
    if extra:
        raise ElevenLabsValidationError(f"{where}: keys the SDK does not declare: {sorted(extra)}")
    for key, info in fields.items():
        if key in value:
            _check_nested(info.annotation, value[key], f"{where}.{key}")


def _check_nested(annotation: Any, value: Any, where: str) -> None:
    if hasattr(annotation, "model_fields") and isinstance(value, dict):
        _no_unknown_keys(annotation, value, where)
        return
    for inner in typing.get_args(annotation):
        if isinstance(value, list) and typing.get_origin(annotation) is list:
            for i, item in enumerate(value):
                _check_nested(inner, item, f"{where}[{i}]")
        else:
            _check_nested(inner, value, where)
