"""Validate OpenAI requests and responses against the official ``openai`` SDK's own types.

Why: a fake that drifts from the API makes green tests lie. The fake's tests run everything it
sends through these checks, and services' tests run what *our* clients send (recorded by the
fake) through them. Two things make plain ``TypeAdapter``/``model_validate`` too lenient:

* the SDK's request TypedDicts use ``Iterable[...]``, which pydantic validates lazily (nothing is
  checked until iterated), and TypedDicts ignore unknown keys: so ``validate_*_request``
  materialises every iterable and rejects keys no member of the declared type has;
* the SDK's response models allow extra fields: so ``validate_response`` rejects any
  ``model_extra`` anywhere and requires ``model_dump(exclude_unset=True)`` to give back exactly
  the input (no coercion, no dropped keys).

Needs the ``openai`` package (``phonewire[openai]`` or ``phonewire[test]``).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from typing import Any, TypeVar

import pydantic
import typing_extensions
from openai import BaseModel as OpenAIModel
from openai.types.audio import speech_create_params, transcription_create_params
from openai.types.chat import completion_create_params

__all__ = [
    "OpenAIValidationError",
    "validate_chat_request",
    "validate_response",
    "validate_speech_request",
    "validate_transcription_form",
]

M = TypeVar("M", bound=OpenAIModel)


class OpenAIValidationError(ValueError):
    """The object does not match the SDK's type; the message says where."""


@cache
def _adapter(tp: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(tp)


def _materialize(value: Any) -> Any:
    """Consume pydantic's lazy ``ValidatorIterator``s so their items get validated."""
    if isinstance(value, dict):
        return {k: _materialize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_materialize(v) for v in value]
    if isinstance(value, Iterator):
        return [_materialize(v) for v in value]
    return value


def _is_scalar(tp: Any) -> bool:
    """None, str, numbers and Literals: union members an object or array cannot be."""
    tp = getattr(tp, "__value__", tp)
    return tp in (type(None), str, int, float, bool, bytes) or typing.get_origin(tp) is typing.Literal


def _mismatches(problems: list[str]) -> int:
    return sum("is not one of" in p or "scalar" in p for p in problems)


def _unknown_keys(value: Any, tp: Any, path: str) -> list[str]:
    """Paths of keys in ``value`` that ``tp`` (a TypedDict-based type) does not declare."""
    tp = getattr(tp, "__value__", tp)
    if _is_scalar(tp):  # also tells union members apart (role literals, str vs list content)
        if isinstance(value, Mapping | list):
            return [f"{path}: an object/array where the type has a scalar"]
        if typing.get_origin(tp) is typing.Literal and value not in typing.get_args(tp):
            return [f"{path}: {value!r} is not one of {typing.get_args(tp)}"]
        return []
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unknown_keys(value, typing.get_args(tp)[0], path)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(tp)
        results = [_unknown_keys(value, member, path) for member in members]
        # report against the member whose literals (e.g. ``role``) matched, if any did
        return [] if any(not r for r in results) else min(results, key=lambda r: (_mismatches(r), len(r)))
    if typing_extensions.is_typeddict(tp):
        if not isinstance(value, Mapping):
            return [f"{path}: expected an object"]
        hints = typing.get_type_hints(tp)
        problems = [f"{path}.{key}: unknown key" for key in value if key not in hints]
        for key, item in value.items():
            if key in hints:
                problems += _unknown_keys(item, hints[key], f"{path}.{key}")
        return problems
    if (
        origin is not None
        and isinstance(origin, type)
        and issubclass(origin, Iterable)
        and not issubclass(origin, Mapping)
    ):
        args = typing.get_args(tp)
        if args and isinstance(value, list):
            return [p for i, item in enumerate(value) for p in _unknown_keys(item, args[0], f"{path}[{i}]")]
    return []  # scalars, literals, free-form dicts (metadata, JSON Schema): pydantic checked them


def _validate_params(body: Any, tp: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise OpenAIValidationError(f"{what}: expected a JSON object, got {type(body).__name__}")
    try:
        validated = _materialize(_adapter(tp).validate_python(dict(body)))
    except pydantic.ValidationError as exc:
        raise OpenAIValidationError(f"{what}: {exc}") from exc
    missing = [key for key in getattr(tp, "__required_keys__", ()) if key not in body]
    problems = [f"$.{key}: required" for key in missing] + _unknown_keys(body, tp, "$")
    if problems:
        raise OpenAIValidationError(f"{what}: " + "; ".join(problems))
    return dict(validated)


def validate_chat_request(body: Any) -> dict[str, Any]:
    """Check a Chat Completions request body against ``CompletionCreateParamsStreaming`` (when
    ``stream`` is true) or ``...NonStreaming``. Returns the validated body; raises
    ``OpenAIValidationError`` on a wrong type, a missing ``model``/``messages``, or an unknown
    key at any level (top level, messages by role, tool definitions, ``stream_options``...)."""
    if isinstance(body, Mapping) and body.get("stream"):
        tp: Any = completion_create_params.CompletionCreateParamsStreaming
    else:
        tp = completion_create_params.CompletionCreateParamsNonStreaming
    for key in ("model", "messages"):
        if isinstance(body, Mapping) and key not in body:
            raise OpenAIValidationError(f"chat request: $.{key}: required")
    return _validate_params(body, tp, "chat request")


def validate_speech_request(body: Any) -> dict[str, Any]:
    """Check an ``/audio/speech`` JSON body against ``SpeechCreateParams``."""
    for key in ("model", "input", "voice"):
        if isinstance(body, Mapping) and key not in body:
            raise OpenAIValidationError(f"speech request: $.{key}: required")
    return _validate_params(body, speech_create_params.SpeechCreateParams, "speech request")


_FORM_ARRAYS = {"include[]", "timestamp_granularities[]", "keywords[]", "languages[]", "known_speaker_names[]"}


def validate_transcription_form(form: Mapping[str, str], *, has_file: bool = True) -> None:
    """Check ``/audio/transcriptions`` form field names (``file`` and ``model`` present, no field
    the SDK's ``TranscriptionCreateParams`` lacks). Values are strings on the wire, so only
    names and the enumerated ``response_format`` are checked."""
    hints = typing.get_type_hints(transcription_create_params.TranscriptionCreateParamsNonStreaming)
    problems = [f"{name}: unknown field" for name in form if name not in hints and name not in _FORM_ARRAYS]
    if not has_file and "file" not in form:
        problems.append("file: required")
    if "model" not in form:
        problems.append("model: required")
    fmt = form.get("response_format")
    allowed = typing.get_args(_literal_of(hints["response_format"]))
    if fmt is not None and fmt not in allowed:
        problems.append(f"response_format: {fmt!r} not one of {allowed}")
    if problems:
        raise OpenAIValidationError("transcription form: " + "; ".join(problems))


def _literal_of(tp: Any) -> Any:
    """The Literal inside an alias/Optional/Union, e.g. ``AudioResponseFormat``."""
    tp = getattr(tp, "__value__", tp)
    while typing.get_origin(tp) is not typing.Literal:
        args = typing.get_args(tp)
        if not args:
            return tp
        tp = getattr(args[0], "__value__", args[0])
    return tp


def _extras(model: Any, path: str) -> list[str]:
    if isinstance(model, OpenAIModel):
        found = [f"{path}.{key}: unknown field" for key in (model.model_extra or {})]
        for name in type(model).model_fields:
            found += _extras(getattr(model, name), f"{path}.{name}")
        return found
    if isinstance(model, list):
        return [p for i, item in enumerate(model) for p in _extras(item, f"{path}[{i}]")]
    return []


def validate_response(model_cls: type[M], obj: Any) -> M:
    """Parse ``obj`` (a decoded JSON response or chunk) as ``model_cls`` strictly: it must
    validate, carry no field the model lacks (at any depth), and dump back to exactly ``obj``."""
    try:
        model = model_cls.model_validate(obj)
    except pydantic.ValidationError as exc:
        raise OpenAIValidationError(f"{model_cls.__name__}: {exc}") from exc
    _exact(model, obj, model_cls.__name__)
    return model


def _exact(model: pydantic.BaseModel, obj: Any, label: str) -> None:
    """The strict half of validating what a server sends: no field the model lacks (at any
    depth), and ``model`` dumps back to exactly ``obj``."""
    problems = _extras(model, "$")
    dumped = model.model_dump(mode="json", exclude_unset=True)
    if not problems and dumped != obj:
        problems.append(f"does not round-trip: sent {obj!r}, model dumps {dumped!r}")
    if problems:
        raise OpenAIValidationError(f"{label}: " + "; ".join(problems))
