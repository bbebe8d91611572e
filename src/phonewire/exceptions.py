"""phonewire's exceptions, one tree::

    PhonewireError                      root of every error phonewire raises on purpose
    ├── ConfigurationError              bad parameters or missing credentials, raised at construction
    │                                   (also a ValueError)
    ├── ProtocolError                   a message that breaks a provider's protocol (close_code)
    │   ├── RemoteProtocolError         the peer sent it: log, count, keep the call going
    │   │   └── CodecError              audio that cannot be decoded as its declared format
    │   └── LocalProtocolError          we were asked to send something the protocol forbids
    ├── HandshakeError                  the stream never identified itself in time (close_code says how to close)
    ├── SignatureError                  a signed token (the Vonage JWT) missing, forged, stale or not the body's
    │                                   (telephony/signatures.py)
    ├── StreamTokenError                the stream's token is not valid for this call (telephony/tokens.py)
    └── OutboundLimitError              no outbound call slot became free in time (telephony/call_control/outbound.py)

Defined here: the first six. The last three live beside the code that raises them and are
importable from there.

Outside the tree, signals that phonewire raises and catches itself (never seen by a bot):
``SmartTurnBusy`` and ``InferenceBusy`` (a model's queue is full: decide without it),
``ChatStreamError``, ``LLMTimeout``, ``TruncatedStream`` and ``StreamOptionsRejected``
(services/openai: an error chunk, our deadline, a cut reply, a refused option), and
``WebhookBodyError`` (server webhooks: answer its status). ``RealtimeConnectError``
(services/openai/realtime) and ``Unsupported`` (telephony/call_control: the provider has no API
for the action) reach the caller of those services.

Parsers (serializers) raise only ``RemoteProtocolError`` on bad input; anything else escaping a
parser is a bug, and the property tests in tests/serializers enforce that.
"""

from __future__ import annotations

__all__ = [
    "CodecError",
    "ConfigurationError",
    "HandshakeError",
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
