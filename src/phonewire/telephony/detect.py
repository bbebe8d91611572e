"""Which provider is on the line, decided from its opening messages.

Each provider is recognised by its *start* message, which carries the call's identity
and media format; earlier messages (Twilio's, Telnyx's and Exotel's ``connected``) are
consumed, later ones (media that raced ahead) are handed back as ``pending``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from phonewire.serializers.base import CallInfo, FrameSerializer, Message

__all__ = ["Detection", "detect", "register_provider"]


@dataclass(slots=True)
class Detection:
    info: CallInfo
    make_serializer: Callable[..., FrameSerializer]
    pending: list[Message] = field(default_factory=list)
    #: Messages that came before the start and are not the provider's preamble (e.g. media
    #: before start): a protocol error each, counted by the transport.
    early: int = 0


#: Messages a provider legitimately sends before its start.
_PREAMBLE = {"connected"}


def _early(parsed: list[Any]) -> int:
    return sum(1 for m in parsed if not (isinstance(m, dict) and m.get("event") in _PREAMBLE))


# name -> (recognize(parsed messages) -> (index of the start message, whether the serializer
# must also see that message) or None, parse, factory)
Recognizer = Callable[[list[Any]], tuple[int, bool] | None]
#: The provider a route can be pinned to that accepts any opening (binary audio, metadata).
CATCH_ALL = "raw_pcm"
_PROVIDERS: dict[str, tuple[Recognizer, Callable[[Any], CallInfo], Callable[..., FrameSerializer]]] = {}


def register_provider(
    name: str, recognize: Recognizer, parse: Callable[[Any], CallInfo], factory: Callable[..., FrameSerializer]
) -> None:
    _PROVIDERS[name] = (recognize, parse, factory)


def parse_message(message: Message) -> Any:
    """A message as the recognisers see it: JSON decoded, else the text, or the bytes."""
    if not isinstance(message, str):
        return message  # binary stays bytes
    try:
        return json.loads(message)
    except (ValueError, RecursionError):
        return message  # not JSON: plain-text metadata (FreeSWITCH), or garbage


def detect(
    seen: list[Message], providers: list[str] | None = None, parsed: list[Any] | None = None
) -> Detection | None:
    """Return a Detection once some provider's start is among ``seen``; None to read more.

    ``parsed`` (``parse_message`` of each of ``seen``) saves re-parsing on every new message."""
    parsed = parsed if parsed is not None else [parse_message(m) for m in seen]
    for name, (recognize, parse, factory) in _PROVIDERS.items():
        if providers is not None and name not in providers:
            continue
        found = recognize(parsed)
        if found is not None:
            index, replay = found
            start = index if replay else index + 1
            return Detection(parse(parsed[index]), factory, list(seen[start:]), _early(parsed[:index]))
    if providers == [CATCH_ALL] and parsed:
        # A route pinned to raw PCM serves any client: the serializer reads its first message.
        recognize, parse, factory = _PROVIDERS[CATCH_ALL]
        first = parsed[0] if isinstance(parsed[0], dict | str) else None
        return Detection(parse(first), factory, list(seen))
    return None


def _load_builtin() -> None:
    from phonewire.telephony import providers  # noqa: F401  (registers the built-in providers)


_load_builtin()
