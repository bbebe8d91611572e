"""One scriptable provider-side WebSocket client for the end-to-end tests, built on what we ship.

``WireClient`` is a thin asyncio driver around two sans-I/O parts of ``phonewire.testing``:
a ``ProviderClient`` (the provider's wire format both ways, and its rules for what a bot may
send) and the handset ``Playout`` (bot audio plays in real time, a mark comes due when the
audio before it has played, ``clear`` drops what has not). The call simulator drives the same
two parts on its own clock; the tests drive them message by message.

* every server message is parsed by the provider client; what the real provider would reject
  is recorded in ``violations`` (tests assert it is empty);
* with ``respond`` on (the default) marks are echoed when the playout reaches them, and a
  clear is answered as the provider answers it (``echo_marks_on_clear``, ``clear_ack``).

The factories below build the shipped clients with the fixed IDs the tests assert on.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from phonewire.testing.playout import Playout
from phonewire.testing.providers import (
    Clear,
    ExotelClient,
    Mark,
    PlayAudio,
    PlivoClient,
    ProtocolViolation,
    ProviderClient,
    RawPCMClient,
    ServerCommand,
    TelnyxClient,
    TwilioClient,
    VonageClient,
)
from phonewire.testing.providers.base import media_payload

Msg = dict[str, Any] | bytes

# --- fixed IDs ---------------------------------------------------------------------------------

STREAM_SID = "MZ00000000000000000000000000000001"
CALL_SID = "CA00000000000000000000000000000001"
ACCOUNT_SID = "AC00000000000000000000000000000001"

TELNYX_STREAM_ID = "6F1C2B7A-0D4E-4C51-9A3B-5E8D7C6B4A21"
TELNYX_CALL_CONTROL_ID = "v3:pw-e2e-Q2FsbENvbnRyb2xJZC0wMDAx"
TELNYX_USER_ID = "0b7d3f5e-2a41-4c8e-9d6f-1e2a3b4c5d6e"
TELNYX_FROM = "+13125550143"
TELNYX_TO = "+13125550187"

PLIVO_STREAM_ID = "3d9a7c1e-5b2f-4e8a-9c6d-7f1e2a3b4c5d"
PLIVO_CALL_ID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
PLIVO_ACCOUNT_ID = "MAPWE2E0000000000001"
PLIVO_EXTRA_HEADERS = {"userId": "42", "sessionId": "pw-e2e"}

EXOTEL_STREAM_SID = "MZ5f0c2a9e4b7d18c3a6e21f04"
EXOTEL_CALL_SID = "CA93b1e7d4c0a25f86e3d7b915"
EXOTEL_ACCOUNT_SID = "AC2d8e4f61a09b37c5e8f1d2a4"
EXOTEL_FROM = "+919812345678"
EXOTEL_TO = "+918030123456"

VONAGE_CALL_UUID = "63f61863-4a51-4f6b-86e1-46edebcf9356"


def twilio(custom: dict[str, str] | None = None, **kwargs: Any) -> TwilioClient:
    return TwilioClient(
        account_sid=ACCOUNT_SID, call_sid=CALL_SID, stream_sid=STREAM_SID, custom_parameters=custom, **kwargs
    )


def telnyx(custom: dict[str, str] | None = None, **kwargs: Any) -> TelnyxClient:
    return TelnyxClient(
        stream_id=TELNYX_STREAM_ID,
        call_control_id=TELNYX_CALL_CONTROL_ID,
        user_id=TELNYX_USER_ID,
        call_session_id="5c1d8e2f-7a9b-4c3d-8e1f-2a3b4c5d6e7f",
        from_number=TELNYX_FROM,
        to_number=TELNYX_TO,
        client_state="cGhvbmV3aXJlLWUyZQ==",
        custom_parameters={"customer_id": "cust_1001"} if custom is None else custom,
        **kwargs,
    )


def plivo(**kwargs: Any) -> PlivoClient:
    kwargs.setdefault("custom_parameters", PLIVO_EXTRA_HEADERS)
    kwargs.setdefault("start_timestamp_ms", 1772446500000)
    return PlivoClient(call_id=PLIVO_CALL_ID, stream_id=PLIVO_STREAM_ID, account_id=PLIVO_ACCOUNT_ID, **kwargs)


def exotel(custom: dict[str, str] | None = None, **kwargs: Any) -> ExotelClient:
    return ExotelClient(
        stream_sid=EXOTEL_STREAM_SID,
        call_sid=EXOTEL_CALL_SID,
        account_sid=EXOTEL_ACCOUNT_SID,
        from_number=EXOTEL_FROM,
        to_number=EXOTEL_TO,
        custom_parameters={"lang": "hi-IN"} if custom is None else custom,
        **kwargs,
    )


def vonage(headers: dict[str, Any] | None = None, **kwargs: Any) -> VonageClient:
    fields = {"call_uuid": VONAGE_CALL_UUID, "language": "en-GB"} if headers is None else headers
    return VonageClient(custom_parameters=fields, **kwargs)


def raw_pcm(call_id: str = "e2e-raw-1", **kwargs: Any) -> RawPCMClient:
    kwargs.setdefault("custom_parameters", {"k": "v", "n": 3})
    return RawPCMClient(call_id=call_id, **kwargs)


# --- the client --------------------------------------------------------------------------------


class WireClient:
    """One call's provider side over a real WebSocket: ``provider`` speaks, ``playout`` listens."""

    def __init__(self, ws: ClientConnection, provider: ProviderClient, *, respond: bool = True) -> None:
        self.ws = ws
        self.provider = provider
        self.rate = provider.wire_format.sample_rate
        self.packet_ms = provider.packet_ms
        self.respond = respond
        self.playout = Playout(self.rate)
        #: (arrival, message) per server message: a JSON object, or the bytes of a binary frame.
        self.received: list[tuple[float, Msg]] = []
        #: Decoded server audio, (arrival time, PCM16 at ``rate``) per audio message.
        self.audio: list[tuple[float, bytes]] = []
        #: Audio payloads as they were on the wire (before decoding).
        self.payloads: list[bytes] = []
        self.marks_received: list[str] = []
        self.acks_sent: list[str] = []
        self.clears = 0
        self.clear_times: list[float] = []
        #: Seconds of bot audio the handset had played when each clear came.
        self.played_at_clear: list[float] = []
        self.violations: list[str] = []
        #: Every message sent, as it went on the wire.
        self.sent: list[str | bytes] = []
        self.closed = False
        self._commands: dict[int, list[ServerCommand]] = {}

    @classmethod
    async def connect(
        cls,
        hostport: str,
        provider: ProviderClient | None = None,
        *,
        path: str = "/ws",
        headers: dict[str, str] | None = None,
        respond: bool = True,
    ) -> WireClient:
        """Dial ``ws://hostport/path`` as ``provider`` (a fixed-ID Twilio by default)."""
        provider = provider if provider is not None else twilio()
        url = f"ws://{hostport}{path}"
        extra = {**provider.upgrade_headers(url), **(headers or {})}
        ws = await connect(url, compression=None, open_timeout=5, close_timeout=2, additional_headers=extra or None)
        return cls(ws, provider, respond=respond)

    # --- sending -----------------------------------------------------------------------------

    async def send(self, obj: dict[str, Any] | str | bytes) -> None:
        message = obj if isinstance(obj, str | bytes) else json.dumps(obj, separators=(",", ":"))
        self.sent.append(message)
        await self.ws.send(message)

    async def handshake(self) -> None:
        for message in self.provider.opening_messages():
            await self.send(message)

    def media_message(self, pcm: bytes) -> Any:
        """The next inbound media message for PCM16 ``pcm`` (numbers the packet; does not send it)."""
        return self.provider.media_message(self.provider.encode(pcm))

    async def media(self, pcm: bytes) -> None:
        await self.send(self.media_message(pcm))

    async def dtmf(self, digit: str) -> None:
        await self.send(self.provider.dtmf_message(digit))

    async def mark_echo(self, name: str) -> None:
        await self.send(self.provider.mark_echo(name))

    async def stop(self) -> None:
        message = self.provider.stop_message()
        if message is not None:
            await self.send(message)

    @property
    def packet_bytes(self) -> int:
        """PCM16 bytes in one inbound packet."""
        return self.provider.samples_per_packet * 2

    async def stream_audio(self, pcm: bytes, *, realtime: bool = True) -> None:
        """Send PCM16 at ``rate`` in packets on a real-time clock (anchored to the start, no drift)."""
        t0 = time.monotonic()
        step = self.packet_bytes
        for i in range(0, len(pcm), step):
            if realtime:
                await asyncio.sleep(max(0.0, t0 + i / (2 * self.rate) - time.monotonic()))
            await self.media(pcm[i : i + step])

    # --- receiving ---------------------------------------------------------------------------

    def commands(self, msg: Msg) -> list[ServerCommand]:
        """What the provider client made of a received message."""
        return self._commands.get(id(msg), [])

    def audio_payload(self, msg: Msg) -> bytes | None:
        """The decoded audio of a received message, None if it carried none."""
        pcm = b"".join(c.pcm for c in self.commands(msg) if isinstance(c, PlayAudio))
        return pcm if any(isinstance(c, PlayAudio) for c in self.commands(msg)) else None

    def mark_of(self, msg: Msg) -> str | None:
        return next((c.name for c in self.commands(msg) if isinstance(c, Mark)), None)

    def is_clear(self, msg: Msg) -> bool:
        return any(isinstance(c, Clear) for c in self.commands(msg))

    async def recv(self, timeout: float = 5.0) -> Msg:
        async with asyncio.timeout(timeout):
            raw = await self.ws.recv()
        now = time.monotonic()
        msg: Msg = raw if isinstance(raw, bytes) else json.loads(raw)
        commands = self.provider.parse_server_message(raw)
        self._commands[id(msg)] = commands
        self.received.append((now, msg))
        for command in commands:
            await self._apply(command, msg, now)
        await self.echo_due_marks()
        return msg

    async def _apply(self, command: ServerCommand, msg: Msg, now: float) -> None:
        if isinstance(command, ProtocolViolation):
            self.violations.append(f"{self.provider.name}: {command.reason}")
        elif isinstance(command, PlayAudio):
            wire = msg if isinstance(msg, bytes) else media_payload(msg.get("media"))
            if isinstance(wire, bytes):
                self.payloads.append(wire)
            self.audio.append((now, command.pcm))
            self.playout.push_audio(command.pcm)
        elif isinstance(command, Mark):
            self.marks_received.append(command.name)
            await self._echo(self.playout.push_mark(command.name))
        elif isinstance(command, Clear):
            self.clears += 1
            self.clear_times.append(now)
            self.played_at_clear.append(self.playout.played_s())
            pending = self.playout.clear()
            if self.provider.echo_marks_on_clear:
                await self._echo(pending)
            answer = self.provider.clear_ack()
            if answer is not None and self.respond:
                await self.send(answer)

    async def _echo(self, names: list[str]) -> None:
        if self.respond:
            for name in names:
                self.acks_sent.append(name)
                await self.mark_echo(name)

    async def echo_due_marks(self) -> None:
        await self._echo(self.playout.poll())

    def _mark_wait(self) -> float | None:
        due = self.playout.next_mark_s if self.respond else None
        return None if due is None else max(0.0, due - self.playout.now())

    async def pump(
        self, seconds: float, *, idle: float | None = None, until: Callable[[Msg], bool] | None = None
    ) -> list[Msg]:
        """Receive (and play out, and acknowledge) for up to ``seconds``.

        Stops early when ``until(msg)`` is true, when the socket closes, or - with ``idle`` -
        once something arrived and then nothing for ``idle`` seconds with no mark still due.
        Returns the messages received.
        """
        out: list[Msg] = []
        deadline = time.monotonic() + seconds
        last = time.monotonic()
        while not self.closed:
            now = time.monotonic()
            if now >= deadline:
                break
            wait = deadline - now
            due = self._mark_wait()
            if due is not None:
                wait = min(wait, due)
            if idle is not None and out and due is None:
                if now - last >= idle:
                    break
                wait = min(wait, last + idle - now)
            try:
                msg = await self.recv(max(0.001, wait))
            except TimeoutError:
                await self.echo_due_marks()
                continue
            except ConnectionClosed:
                self.closed = True
                break
            last = time.monotonic()
            out.append(msg)
            if until is not None and until(msg):
                break
        return out

    async def expect(self, predicate: Callable[[Msg], bool], timeout: float = 5.0) -> Msg:
        """Pump until a message matches ``predicate``; TimeoutError if none does in time."""
        msgs = await self.pump(timeout, until=predicate)
        if msgs and predicate(msgs[-1]):
            return msgs[-1]
        raise TimeoutError(f"no matching message within {timeout}s (closed={self.closed})")

    async def expect_audio(self, timeout: float = 5.0) -> Msg:
        return await self.expect(lambda m: self.audio_payload(m) is not None, timeout)

    async def expect_clear(self, timeout: float = 5.0) -> Msg:
        return await self.expect(self.is_clear, timeout)

    async def recv_event(self, event: str, timeout: float = 5.0) -> dict[str, Any]:
        """Pump until a JSON message with this ``event`` arrives."""
        msg = await self.expect(lambda m: isinstance(m, dict) and m.get("event") == event, timeout)
        assert isinstance(msg, dict)
        return msg

    async def collect_media(self, seconds: float, *, until_silence: float | None = None) -> list[tuple[float, bytes]]:
        """Pump for up to ``seconds`` (or until ``until_silence`` seconds pass with no message
        after the first); returns (arrival time, PCM16) per audio message received meanwhile."""
        first = len(self.audio)
        await self.pump(seconds, idle=until_silence)
        return self.audio[first:]

    async def wait_closed(self, timeout: float = 5.0) -> int | None:
        """Pump (answering as the provider would) until the server closes; returns the close code."""
        await self.pump(timeout)
        if not self.closed:
            raise TimeoutError(f"the server did not close the socket within {timeout}s")
        return self.ws.close_code

    def pcm(self, since: float = 0.0) -> bytes:
        """All decoded server audio received at or after ``since`` (a monotonic time)."""
        return b"".join(p for t, p in self.audio if t >= since)

    # --- a handset in the background ---------------------------------------------------------

    def start_playing(self) -> None:
        """Receive and play in a background task (like a phone) while the test sends."""
        self._player = asyncio.get_running_loop().create_task(self.pump(3600.0))

    async def stop_playing(self) -> None:
        self._player.cancel()
        await asyncio.gather(self._player, return_exceptions=True)

    async def close(self) -> None:
        self.closed = True
        await self.ws.close()
