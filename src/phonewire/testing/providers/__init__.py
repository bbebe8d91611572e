"""Provider clients for the call simulator, one module per provider, found by name.

Adding a provider: write ``providers/<name>.py`` with a ``ProviderClient`` subclass (see
``base.py`` and ``twilio.py``), then add it to ``PROVIDERS`` below (or call
``register_provider`` from outside the package).
"""

from __future__ import annotations

from typing import Any

from phonewire.exceptions import ConfigurationError
from phonewire.testing.providers.base import (
    Clear,
    HangupRoute,
    Mark,
    Message,
    PlayAudio,
    ProtocolViolation,
    ProviderClient,
    SendDTMF,
    ServerCommand,
)
from phonewire.testing.providers.exotel import ExotelClient
from phonewire.testing.providers.plivo import PlivoClient
from phonewire.testing.providers.raw_pcm import RawPCMClient
from phonewire.testing.providers.telnyx import TelnyxClient
from phonewire.testing.providers.twilio import TwilioClient
from phonewire.testing.providers.vonage import VonageClient

__all__ = [
    "PROVIDERS",
    "Clear",
    "ExotelClient",
    "HangupRoute",
    "Mark",
    "Message",
    "PlayAudio",
    "PlivoClient",
    "ProtocolViolation",
    "ProviderClient",
    "RawPCMClient",
    "SendDTMF",
    "ServerCommand",
    "TelnyxClient",
    "TwilioClient",
    "VonageClient",
    "create_provider",
    "register_provider",
]

PROVIDERS: dict[str, type[ProviderClient]] = {
    cls.name: cls for cls in (TwilioClient, TelnyxClient, PlivoClient, ExotelClient, VonageClient, RawPCMClient)
}


def register_provider(cls: type[ProviderClient]) -> type[ProviderClient]:
    """Make ``cls`` available by its ``name`` (usable as a class decorator)."""
    PROVIDERS[cls.name] = cls
    return cls


def create_provider(name: str, **kwargs: Any) -> ProviderClient:
    """A fresh client for one call of provider ``name``; ``kwargs`` go to its constructor."""
    try:
        cls = PROVIDERS[name.lower()]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigurationError(f"unknown provider {name!r}; the simulator knows: {known}") from None
    return cls(**kwargs)
