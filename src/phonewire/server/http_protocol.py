"""uvicorn's h11 protocol with deadlines for request headers and bodies and a per-address cap.

uvicorn has no timeout for a request that is still arriving: its keep-alive timer stops at
the first byte, so a client trickling one header byte every few seconds holds a connection
for ever (slowloris; the review kept 40 upgrade requests open for 35 s), and a client that
sends complete headers with ``Content-Length: 60000`` and then nothing holds one just as
long (the second review: 330 such sockets from one address made every request a 503). This
subclass gives every request ``header_timeout`` seconds from its first byte (or from the
connection) to complete its headers and then ``body_timeout`` seconds to complete its body,
lets one client address have at most ``max_pending_per_client`` requests in flight (headers
or body unfinished), and refuses (400) a request head larger than
``h11_max_incomplete_event_size`` - h11 itself only limits a head that arrives in pieces,
and httptools has no limit at all, which is why ``phonewire serve`` uses h11 for HTTP
(WebSocket traffic after the upgrade is not parsed by it).

Settings are class attributes (``configure``), read from ``PHONEWIRE_HEADER_TIMEOUT``,
``PHONEWIRE_BODY_TIMEOUT`` and ``PHONEWIRE_MAX_PENDING_PER_CLIENT`` at import so that
``--workers`` processes share them. ``body_timeout`` is a backstop for every route: the
webhooks answer 408 themselves after ``ServerConfig.webhook_body_timeout``, and
``uvicorn_config_kwargs`` sets this one a second later so their answer comes first.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HTTP_REFUSALS", "PhonewireH11Protocol"]

logger = logging.getLogger("phonewire.server")

#: Connections closed by this protocol, by reason (rendered at /metrics).
HTTP_REFUSALS: Counter[str] = Counter()


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


class PhonewireH11Protocol(H11Protocol):
    header_timeout: ClassVar[float] = _env_float("PHONEWIRE_HEADER_TIMEOUT", 10.0)
    body_timeout: ClassVar[float] = _env_float("PHONEWIRE_BODY_TIMEOUT", 6.0)
    max_pending_per_client: ClassVar[int] = int(_env_float("PHONEWIRE_MAX_PENDING_PER_CLIENT", 16))
    #: Connections per client address whose current request is in flight (headers or body
    #: unfinished).
    _pending: ClassVar[Counter[str]] = Counter()

    @classmethod
    def configure(
        cls, *, header_timeout: float, max_pending_per_client: int, body_timeout: float | None = None
    ) -> None:
        cls.header_timeout = header_timeout
        cls.max_pending_per_client = max_pending_per_client
        if body_timeout is not None:
            cls.body_timeout = body_timeout

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        #: "headers", "body" or None (nothing arriving: idle, answered, or upgraded).
        self._phase: str | None = None
        self._counted = False
        self._address = "-"
        self._head_bytes = 0
        self._head_limit = self.config.h11_max_incomplete_event_size or 16 * 1024

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._address = self.client[0] if self.client else "-"
        if self._pending[self._address] >= self.max_pending_per_client:
            HTTP_REFUSALS["pending_per_client"] += 1
            count = HTTP_REFUSALS["pending_per_client"]
            if count == 1 or count % 100 == 0:
                logger.warning(
                    "! closing a connection: %d unfinished requests from one address (max_pending_per_client, %d)",
                    self.max_pending_per_client,
                    count,
                )
            transport.close()
            return
        self._enter("headers")

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            # h11 limits only an *incomplete* head: one that arrives whole in a read (up to
            # 256 KiB) passes. Count the head's bytes ourselves (the body is not counted).
            end = data.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else end + 4
            if self._head_bytes > self._head_limit:
                HTTP_REFUSALS["header_too_large"] += 1
                self._enter(None)
                self.send_400_response("Request header too large.")
                return
        super().data_received(data)
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            self._enter(None)  # closed, or upgraded to a WebSocket: the app's limits apply
        elif self.conn.their_state is h11.IDLE:
            self._enter("headers")  # (still) inside a request's headers: the clock runs from its first byte
        elif self.conn.their_state is h11.SEND_BODY:
            self._head_bytes = 0
            self._enter("body")  # headers complete, body still arriving: its own clock
        else:
            self._head_bytes = 0
            self._enter(None)  # the request has arrived whole

    def connection_lost(self, exc: Exception | None) -> None:
        self._enter(None)
        super().connection_lost(exc)

    def _enter(self, phase: str | None) -> None:
        """Move to ``phase``: a new deadline when it changes, the per-address count while
        anything (headers or body) is still arriving."""
        if phase == self._phase:
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = phase
        if phase is not None:
            timeout = self.header_timeout if phase == "headers" else self.body_timeout
            self._deadline = self.loop.call_later(timeout, self._too_slow)
        if (phase is not None) != self._counted:
            self._counted = phase is not None
            self._pending[self._address] += 1 if self._counted else -1
            if self._pending[self._address] <= 0:
                del self._pending[self._address]

    def _too_slow(self) -> None:
        phase = self._phase
        self._deadline = None
        self._enter(None)
        reason = "header_timeout" if phase == "headers" else "body_timeout"
        HTTP_REFUSALS[reason] += 1
        count = HTTP_REFUSALS[reason]
        if count == 1 or count % 100 == 0:
            logger.warning(
                "! closing a connection: no complete request %s within %.0fs (%d so far)",
                "headers" if phase == "headers" else "body",
                self.header_timeout if phase == "headers" else self.body_timeout,
                count,
            )
        if not self.transport.is_closing():
            self.transport.close()
