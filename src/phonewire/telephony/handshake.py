"""Reading a provider's opening messages, under a deadline, into a CallInfo.

The first messages of a media stream say who is calling and how the audio is encoded.
``read_handshake`` reads until the provider's start message is recognised (never a fixed
count of messages: a provider that sends one message and waits must not hang us, and a
media packet that arrives early must not be swallowed - it is handed on in ``pending``),
gives up at ``timeout``, and returns the call's data plus a serializer configured from the
call's own media format.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket

from phonewire.exceptions import HandshakeError, ProtocolError
from phonewire.serializers.base import CallInfo, FrameSerializer, Message
from phonewire.telephony.detect import Detection, detect, parse_message

__all__ = ["Handshake", "read_handshake"]

logger = logging.getLogger("phonewire.handshake")

#: Exotel allows 10 s for its handshake; nobody legitimate needs longer to say "start".
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
#: Messages read while waiting for a start; more means the peer is not a provider.
MAX_HANDSHAKE_MESSAGES = 20
#: The largest opening message accepted (a start is well under 4 KB).
MAX_HANDSHAKE_MESSAGE_BYTES = 64 * 1024


@dataclass(slots=True)
class Handshake:
    info: CallInfo
    serializer: FrameSerializer
    pending: list[Message] = field(default_factory=list)
    #: Messages before the start that are not the provider's preamble (media before start).
    early_messages: int = 0


SerializerFactory = Callable[[CallInfo], FrameSerializer]


async def read_handshake(
    websocket: WebSocket,
    *,
    providers: list[str] | None = None,
    timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    serializer_factory: SerializerFactory | None = None,
    **serializer_kwargs: Any,
) -> Handshake:
    """Read the opening messages of an accepted WebSocket.

    Args:
        providers: restrict detection (e.g. ``["twilio"]`` on a Twilio-only route).
        timeout: seconds allowed for the whole handshake.
        serializer_factory: build the serializer yourself from the CallInfo; by default
            ``phonewire.telephony.detect`` builds the provider's serializer with
            ``serializer_kwargs`` (credentials, params) and the call's media format.

    Raises:
        HandshakeError: silent, unknown or malformed client; ``close_code`` says how to close.
    """
    seen: list[Message] = []
    try:
        async with asyncio.timeout(timeout):
            detection = await _read_until_start(websocket, seen, providers)
    except TimeoutError:
        raise HandshakeError(f"no provider start message within {timeout:.1f}s", close_code=1008) from None
    if serializer_factory is not None:
        serializer = serializer_factory(detection.info)
    else:
        serializer = detection.make_serializer(detection.info, **serializer_kwargs)
    logger.info("[%s %s] = handshake done", detection.info.provider, detection.info.call_id or "-")
    if detection.early:
        logger.warning(
            "[%s %s] ! %d message(s) before the start message ignored (protocol error)",
            detection.info.provider,
            detection.info.call_id or "-",
            detection.early,
        )
    return Handshake(detection.info, serializer, detection.pending, detection.early)


async def _read_until_start(websocket: WebSocket, seen: list[Message], providers: list[str] | None) -> Detection:
    parsed: list[object] = []
    while len(seen) < MAX_HANDSHAKE_MESSAGES:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise HandshakeError("client closed before the handshake", close_code=1000)
        data = message.get("text")
        if data is None:
            data = message.get("bytes")
        if data is None:
            continue
        if len(data) > MAX_HANDSHAKE_MESSAGE_BYTES:
            raise HandshakeError(f"opening message of {len(data)} bytes", close_code=1009)
        seen.append(data)
        parsed.append(parse_message(data))
        try:
            found = detect(seen, providers, parsed)
        except ProtocolError as exc:
            raise HandshakeError(f"malformed handshake: {exc}", close_code=1003) from None
        if found is not None:
            return found
    raise HandshakeError("unrecognised client: no provider start message", close_code=1008)
