"""Which provider is on the line, decided from its opening messages.

Each provider is recognised by its *start* message, which carries the call's identity
and media format; earlier messages (Twilio's, Telnyx's and Exotel's ``connected``) are
consumed, later ones (media that raced ahead) are handed back as ``pending``. The providers
themselves (recognisers, start parsers, serializer builders) are data in
``phonewire.telephony.providers``; this module only walks them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from phonewire.serializers.base import CallInfo, FrameSerializer, Message
from phonewire.telephony.providers import CATCH_ALL, get_provider
from phonewire.telephony.providers import providers as registered_providers

__all__ = ["CATCH_ALL", "Detection", "detect", "parse_message"]


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
    only = providers
    for provider in registered_providers():
        if only is not None and provider.name not in only:
            continue
        found = provider.recognise(parsed)
        if found is not None:
            index, replay = found
            start = index if replay else index + 1
            info = provider.parse_start(parsed[index])
            return Detection(info, provider.build_serializer, list(seen[start:]), _early(parsed[:index]))
    if only == [CATCH_ALL] and parsed:
        # A route pinned to raw PCM serves any client: the serializer reads its first message.
        raw = get_provider(CATCH_ALL)
        first = parsed[0] if isinstance(parsed[0], dict | str) else None
        return Detection(raw.parse_start(first), raw.build_serializer, list(seen))
    return None
