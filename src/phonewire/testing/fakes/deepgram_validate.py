"""Validate Deepgram live messages against deepgram-sdk's own pydantic types (test-only dependency).

The SDK's models allow extra keys (``extra="allow"``), so a misspelt field would pass plain
validation; ``validate_server_message`` therefore also refuses any key the model does not
declare, recursively, so the fake cannot drift from what the SDK knows.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DeepgramValidationError", "validate_client_message", "validate_server_message"]


class DeepgramValidationError(AssertionError):
    pass


def _server_types() -> dict[str, Any]:
    from deepgram.listen.v1.types import (
        ListenV1Error,
        ListenV1Metadata,
        ListenV1Results,
        ListenV1SpeechStarted,
        ListenV1UtteranceEnd,
    )

    return {
        "Results": ListenV1Results,
        "Metadata": ListenV1Metadata,
        "UtteranceEnd": ListenV1UtteranceEnd,
        "SpeechStarted": ListenV1SpeechStarted,
        "Error": ListenV1Error,
    }


def _client_types() -> dict[str, Any]:
    from deepgram.listen.v1.types import ListenV1CloseStream, ListenV1Finalize, ListenV1KeepAlive

    return {"KeepAlive": ListenV1KeepAlive, "Finalize": ListenV1Finalize, "CloseStream": ListenV1CloseStream}


def validate_server_message(message: dict[str, Any]) -> Any:
    """The SDK model instance for ``message``; raises DeepgramValidationError."""
    return _validate(message, _server_types())


def validate_client_message(message: dict[str, Any]) -> Any:
    return _validate(message, _client_types())


def _validate(message: dict[str, Any], types: dict[str, Any]) -> Any:
    model = types.get(str(message.get("type")))
    if model is None:
        raise DeepgramValidationError(f"unknown message type {message.get('type')!r}")
    try:
        instance = model.model_validate(message)
    except Exception as exc:
        raise DeepgramValidationError(f"{model.__name__}: {exc}") from exc
    _no_unknown_keys(model, message, model.__name__)
    return instance


def _no_unknown_keys(model: Any, value: Any, where: str) -> None:
    fields = model.model_fields
    extra = set(value) - set(fields)
    if extra:
        raise DeepgramValidationError(f"{where}: keys the SDK does not declare: {sorted(extra)}")
    for name, info in fields.items():
        if name in value:
            _check_nested(info.annotation, value[name], f"{where}.{name}")


def _check_nested(annotation: Any, value: Any, where: str) -> None:
    import typing

    args = typing.get_args(annotation)
    if hasattr(annotation, "model_fields") and isinstance(value, dict):
        _no_unknown_keys(annotation, value, where)
    elif isinstance(value, list):
        for inner in args:
            for i, item in enumerate(value):
                _check_nested(inner, item, f"{where}[{i}]")
    else:
        for inner in args:
            _check_nested(inner, value, where)
