"""phonewire's exceptions, one tree::

    PhonewireError
    ├── ConfigurationError        bad parameters or missing credentials, raised at construction
    ├── ProtocolError             a message that breaks a provider's protocol
    │   ├── RemoteProtocolError   the peer sent it: log, count, keep the call going
    │   └── LocalProtocolError    we were asked to send something the protocol forbids
    ├── HandshakeError            the stream never identified itself in time (close_code says how to close)
    ├── CodecError                audio that cannot be decoded or encoded as declared
    └── HangupError               the provider's REST API refused or never answered a hang-up

Parsers (serializers) raise only ``RemoteProtocolError`` on bad input; anything else escaping a
parser is a bug, and the property tests in tests/serializers enforce that.
"""

from __future__ import annotations

__all__ = [
    "CodecError",
    "ConfigurationError",
    "HandshakeError",
    "HangupError",
    "LocalProtocolError",
    "PhonewireError",
    "ProtocolError",
    "RemoteProtocolError",
]


class PhonewireError(Exception):
    """Root of every error phonewire raises on purpose."""


class ConfigurationError(PhonewireError, ValueError):
    """Bad parameters or missing credentials, raised at construction (also a ValueError)."""


class ProtocolError(PhonewireError):
    """A protocol violation. ``close_code`` is the WebSocket close code to use if the
    connection must be closed because of it (most are only counted)."""

    close_code: int = 1008

    def __init__(self, message: str, *, close_code: int | None = None) -> None:
        super().__init__(message)
        if close_code is not None:
            self.close_code = close_code


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow: logged, counted, skipped."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something the provider would reject (e.g. Twilio 31924)."""


class HandshakeError(PhonewireError):
    def __init__(self, message: str, *, close_code: int = 1008) -> None:
        super().__init__(message)
        self.close_code = close_code


class CodecError(RemoteProtocolError):
    """Audio that cannot be decoded as its declared format."""


class HangupError(PhonewireError):
    """A provider's REST API refused or never answered a hang-up."""
