"""What a provider's handshake told us about a call (``CallInfo``).

Produced by the serializers' ``parse_*_start`` functions and provider detection, read by the
server, the transport and user code. Defined here, beside nothing else, so that every layer can
name it without importing the serializers; ``phonewire.serializers.base`` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from phonewire.audio.codecs import MediaFormat

__all__ = ["CallInfo"]


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What the provider's handshake told us about the call."""

    provider: str
    call_id: str | None
    stream_id: str | None
    media_format: MediaFormat
    account_id: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    custom_parameters: dict[str, str] = field(default_factory=dict)
    # The raw start message, kept for users who need a field we do not model.
    start_message: dict[str, Any] | None = field(default=None, repr=False, compare=False)
