"""LiveConnection: one call's Deepgram socket, kept open, reconnected, fed from the AudioRing.

One supervisor task owns everything: it connects (bounded by ``connect_timeout``), then runs a
sender and a receiver until the socket ends; if that was not our doing it reconnects (backoff
``reconnect_backoff``, immediate the first time) and restarts the sender at the ring's last
finalised offset, so the audio of the gap reaches the new connection. A 4xx at the handshake
other than 408/429 (bad key, bad parameter) will not heal by retrying: it is reported once and
the connection stays down.

The sender sends audio first, then queued control messages (so ``Finalize`` follows the audio
it must flush), every send bounded by ``send_timeout``; when no audio has gone out for
``keepalive_secs`` it sends ``KeepAlive`` (Deepgram closes after ~10 s without data). Live audio
goes out ``MIN_CHUNK_SECS`` (60 ms, three 20 ms packets) to a frame, not a frame per packet: a
third of the sends, wake-ups and timers (each send is a syscall; on the benchmark's loopback the
send path was ~70 µs of CPU per 20 ms packet, ~20 µs now), for interim results at most 40 ms
later. A control message (``Finalize`` at the VAD's stop, ``CloseStream``) or a keepalive sends
whatever is buffered first, so a final never waits for the next packet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from phonewire.logsafe import escape_control
from phonewire.services.deepgram.audio_ring import AudioRing
from phonewire.services.deepgram.live_protocol import (
    CLOSE_STREAM,
    KEEPALIVE,
    DeepgramEvent,
    describe_close,
    parse_message,
)

__all__ = ["ConnectionStatus", "LiveConnection", "redacting_logger"]

logger = logging.getLogger("phonewire.services.deepgram")


class _RedactAuthorization(logging.Filter):
    """websockets logs every handshake header at debug; the credential must not be one of them."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 2 and str(args[0]).lower() == "authorization":
            record.args = (args[0], "[redacted]")
        return True


def redacting_logger(name: str) -> logging.Logger:
    """A logger for a websockets connection whose debug output never shows Authorization."""
    target = logging.getLogger(name)
    if not any(isinstance(f, _RedactAuthorization) for f in target.filters):
        target.addFilter(_RedactAuthorization())
    return target


_WS_LOGGER = redacting_logger("phonewire.services.deepgram.websockets")

#: At most this much audio per binary frame when catching up (a replay): Deepgram suggests 20-100 ms.
MAX_CHUNK_SECS = 0.1
#: Live audio is sent once this much is buffered (or at once with a control message).
MIN_CHUNK_SECS = 0.06
#: Control messages waiting to be sent; more means the socket is stuck, and the oldest go.
MAX_CONTROL = 16
MAX_MESSAGE_BYTES = 1 << 20

EventHandler = Callable[[DeepgramEvent, int], Awaitable[None]]
StatusHandler = Callable[[str, str], Awaitable[None]]


class ConnectionStatus:
    """What ``on_status`` is told (plain strings, for logs)."""

    CONNECTED = "connected"
    DROPPED = "dropped"
    FAILED = "failed"
    REJECTED = "rejected"


class LiveConnection:
    def __init__(
        self,
        *,
        url: str,
        headers: dict[str, str],
        ring: AudioRing,
        bytes_per_sec: int,
        on_event: EventHandler,
        on_status: StatusHandler,
        name: str,
        connect_timeout: float,
        send_timeout: float,
        keepalive_secs: float,
        reconnect_backoff: Sequence[float],
    ) -> None:
        self._url = url
        self._headers = headers
        self._ring = ring
        self._bps = bytes_per_sec
        self._min_chunk = max(1, int(bytes_per_sec * MIN_CHUNK_SECS))
        self._on_event = on_event
        self._on_status = on_status
        self.name = name
        self._connect_timeout = connect_timeout
        self._send_timeout = send_timeout
        self._keepalive_secs = keepalive_secs
        self._backoff = tuple(reconnect_backoff) or (0.0,)
        self._control: deque[str] = deque(maxlen=MAX_CONTROL)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._ws: ClientConnection | None = None
        self._base = 0  # ring offset of this connection's audio time 0
        self._sent = 0
        self.connected = asyncio.Event()
        self.connections = 0
        self.drops = 0
        self.failed_connects = 0
        self.keepalives_sent = 0
        self.bytes_sent = 0
        self.rejected: str | None = None

    # --- called by the service (cheap, never awaits the network) --------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._supervise(), name=f"{self.name}:deepgram")

    def audio_ready(self) -> None:
        if self._ring.end - self._sent >= self._min_chunk:
            self._wake.set()

    def send_control(self, message: str) -> None:
        if message in self._control:
            return  # one pending Finalize flushes as much as two
        self._control.append(message)
        self._wake.set()

    def offset_of(self, seconds: float) -> int:
        """Ring offset of a time in the current connection's audio."""
        return self._base + int(seconds * self._bps)

    async def close(self, *, graceful: bool, timeout: float) -> None:
        """Graceful: ``CloseStream`` after the pending audio, then wait (bounded) for the server
        to send its last results and close. Then (or at once) cancel and await the task."""
        task = self._task
        if task is None:
            return
        if graceful and self.connected.is_set() and not task.done():
            self._closing = True
            self.send_control(CLOSE_STREAM)
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(timeout):
                    await asyncio.shield(task)
        self._closing = True
        self._task = None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    # --- the supervisor ---------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        while not self._closing:
            ws = await self._connect()
            if ws is None:
                if self.rejected is not None:
                    return
                failures += 1
                await asyncio.sleep(self._backoff[min(failures, len(self._backoff)) - 1])
                continue
            failures = 0
            detail = await self._run(ws)
            self.connected.clear()
            if self._closing:
                return
            self.drops += 1
            logger.warning("! %s: Deepgram connection lost (%s); reconnecting", self.name, detail)
            await self._on_status(ConnectionStatus.DROPPED, detail)

    async def _connect(self) -> ClientConnection | None:
        host = urlsplit(self._url).hostname or ""
        proxy: Literal[True] | None = None if host in ("127.0.0.1", "localhost", "::1") else True
        try:
            ws = await connect(
                self._url,
                additional_headers=self._headers,
                open_timeout=self._connect_timeout,
                ping_interval=10,
                ping_timeout=10,
                close_timeout=2,
                max_size=MAX_MESSAGE_BYTES,
                max_queue=64,
                compression=None,  # audio does not deflate: zlib on every 20 ms frame for nothing
                proxy=proxy,
                logger=_WS_LOGGER,
            )
        except InvalidStatus as exc:
            await self._refused(exc)
            return None
        except (OSError, TimeoutError, WebSocketException) as exc:
            self.failed_connects += 1
            logger.warning("! %s: cannot connect to Deepgram: %s", self.name, type(exc).__name__)
            await self._on_status(ConnectionStatus.FAILED, type(exc).__name__)
            return None
        self._ws = ws
        self.connections += 1
        self._base = self._sent = self._ring.replay_from()
        replay_ms = (self._ring.end - self._base) * 1000 // max(1, self._bps)
        logger.debug("+ %s: Deepgram connected (#%d), replaying %d ms", self.name, self.connections, replay_ms)
        self.connected.set()
        await self._on_status(ConnectionStatus.CONNECTED, f"replaying {replay_ms} ms")
        return ws

    async def _refused(self, exc: InvalidStatus) -> None:
        status = exc.response.status_code
        reason = escape_control(str(exc.response.headers.get("dg-error", "")))[:200]
        detail = f"HTTP {status} {reason}".strip()
        self.failed_connects += 1
        if 400 <= status < 500 and status not in (408, 429):
            self.rejected = detail
            logger.error("! %s: Deepgram refused the connection (%s); not retrying", self.name, detail)
            await self._on_status(ConnectionStatus.REJECTED, detail)
        else:
            logger.warning("! %s: Deepgram refused the connection (%s); retrying", self.name, detail)
            await self._on_status(ConnectionStatus.FAILED, detail)

    async def _run(self, ws: ClientConnection) -> str:
        """Sender and receiver until either ends; the other is cancelled and awaited."""
        loop = asyncio.get_running_loop()
        sender = loop.create_task(self._send_loop(ws), name=f"{self.name}:deepgram-send")
        receiver = loop.create_task(self._receive_loop(ws), name=f"{self.name}:deepgram-recv")
        try:
            await asyncio.wait((sender, receiver), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, receiver):
                task.cancel()
            await asyncio.gather(sender, receiver, return_exceptions=True)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await ws.close()
            self._ws = None
        if receiver.cancelled() or receiver.exception() is not None:
            error = None if sender.cancelled() else sender.exception()
            return f"send failed ({type(error).__name__})" if error else "receive failed"
        return receiver.result()

    async def _receive_loop(self, ws: ClientConnection) -> str:
        try:
            async for message in ws:
                if isinstance(message, str):
                    await self._on_event(parse_message(message), self._base)
        except ConnectionClosed:
            pass
        rcvd = ws.protocol.close_rcvd
        return describe_close(rcvd.code if rcvd else None, rcvd.reason if rcvd else "no close frame")

    async def _send_loop(self, ws: ClientConnection) -> None:
        ring, chunk = self._ring, max(1, int(self._bps * MAX_CHUNK_SECS))
        last_data = time.monotonic()
        while True:
            if ring.end > self._sent:
                offset, data = ring.read(self._sent, chunk)
                if data:
                    async with asyncio.timeout(self._send_timeout):
                        await ws.send(data)
                    self._sent = offset + len(data)
                    self.bytes_sent += len(data)
                    last_data = time.monotonic()
                    continue
            if self._control:
                message = self._control.popleft()
                async with asyncio.timeout(self._send_timeout):
                    await ws.send(message)
                continue
            self._wake.clear()
            idle = self._keepalive_secs - (time.monotonic() - last_data)
            try:
                async with asyncio.timeout(max(0.0, idle)):
                    await self._wake.wait()
            except TimeoutError:
                async with asyncio.timeout(self._send_timeout):
                    await ws.send(KEEPALIVE)
                self.keepalives_sent += 1
                last_data = time.monotonic()
