"""A tiny local stand-in for a telephony provider's REST API.

Bots end calls by calling the provider's REST API (Twilio: ``POST .../Calls/{CallSid}.json``
with ``Status=completed``). To test that path without an account, point the bot's API base
URL at ``FakeProviderAPI.base_url``: it answers like the provider, records every request
(so tests can check auth and body), and, like Twilio, ends the simulated call by closing
its WebSocket. It can also be told to fail (404 "already gone", 500) or to never answer,
which is how a bot's hang-up timeout gets tested.

It is a deliberately minimal HTTP/1.1 server on ``asyncio.start_server``: Content-Length
bodies only, keep-alive, 127.0.0.1. Routes come from each provider's ``hangup_route``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from phonewire.testing.fake_control_routes import CONTROL_ROUTES, ControlRoute, error_body
from phonewire.testing.providers import PROVIDERS
from phonewire.testing.providers.base import HangupRoute

__all__ = ["FakeProviderAPI", "RecordedRequest"]

Mode = Literal["ok", "not_found", "error", "hang"]

_REASONS = {
    422: "Unprocessable Entity",
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    500: "Internal Server Error",
}
_MAX_BODY = 1 << 20  # a hang-up request is a few hundred bytes


@dataclass(slots=True)
class RecordedRequest:
    """One request as received. Header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, str] = field(default_factory=dict)
    json: Any = None
    provider: str | None = None
    call_id: str | None = None
    is_hangup: bool = False
    #: A call-control request: "transfer", "dtmf", "create_call", "streaming_start" (else None).
    action: str | None = None
    #: Where a transfer sends the call (number, SIP URI or conference room), as the request says.
    transfer_to: str | None = None
    #: The status and body this request was answered with.
    status: int = 0
    reply: Any = None


class FakeProviderAPI:
    """Plays the providers' REST APIs on 127.0.0.1. Use as ``async with FakeProviderAPI() as api``.

    Args:
        mode: how hang-ups are answered: "ok" (the provider's success reply), "not_found"
            (the provider's "call already gone", Twilio 404 ``{"code": 20404}``), "error"
            (500), or "hang" (never answer: for testing the bot's timeout).
        close_on_hangup: in "ok" mode, end the simulated call (close its WebSocket), as
            Twilio does when a call is completed over REST.
        port: 0 picks a free port.
    """

    def __init__(self, *, mode: Mode = "ok", close_on_hangup: bool = True, port: int = 0) -> None:
        self.mode: Mode = mode
        self.close_on_hangup = close_on_hangup
        self.requests: list[RecordedRequest] = []
        self._port = port
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._calls: dict[str, Callable[[], None]] = {}
        self._transfers: dict[str, Callable[[str], None]] = {}
        self._failures: dict[tuple[str | None, str], int] = {}
        self._request_seen = asyncio.Condition()

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self._port)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> FakeProviderAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeProviderAPI is not started; call start() or use 'async with'")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        """E.g. ``http://127.0.0.1:54321``; use it as the bot's provider API base URL."""
        return f"http://127.0.0.1:{self.port}"

    # --- calls ----------------------------------------------------------------------------

    def register_call(
        self, call_id: str, on_hangup: Callable[[], None], on_transfer: Callable[[str], None] | None = None
    ) -> None:
        """The simulator registers each call so a REST hang-up (or a transfer: the call
        leaves the bot, ``on_transfer(target)``) can end it."""
        self._calls[call_id] = on_hangup
        if on_transfer is not None:
            self._transfers[call_id] = on_transfer

    def unregister_call(self, call_id: str) -> None:
        self._calls.pop(call_id, None)
        self._transfers.pop(call_id, None)

    def fail(self, action: str, status: int = 400, *, provider: str | None = None) -> None:
        """Answer every ``action`` request ("transfer", "dtmf", "create_call"...) with
        ``status`` and the provider's error body (``provider`` None: any provider)."""
        self._failures[(provider, action)] = status

    def control_requests(self, action: str | None = None, call_id: str | None = None) -> list[RecordedRequest]:
        """Call-control requests received (of ``action`` / for ``call_id`` only, if given)."""
        return [
            r
            for r in self.requests
            if r.action and (action is None or r.action == action) and (call_id is None or r.call_id == call_id)
        ]

    async def wait_for(self, action: str, call_id: str | None = None) -> RecordedRequest:
        """Wait for a call-control request. Wrap in ``asyncio.timeout``."""
        async with self._request_seen:
            await self._request_seen.wait_for(lambda: bool(self.control_requests(action, call_id)))
        return self.control_requests(action, call_id)[0]

    def hangups(self, call_id: str | None = None) -> list[RecordedRequest]:
        """Hang-up requests received (for ``call_id`` only, if given)."""
        return [r for r in self.requests if r.is_hangup and (call_id is None or r.call_id == call_id)]

    async def wait_for_hangup(self, call_id: str | None = None) -> RecordedRequest:
        """Wait for a hang-up request. Wrap in ``asyncio.timeout``."""
        async with self._request_seen:
            await self._request_seen.wait_for(lambda: bool(self.hangups(call_id)))
        return self.hangups(call_id)[0]

    # --- HTTP -----------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            while await self._one_request(reader, writer):
                continue
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return  # a client that vanished or sent garbage: nothing to answer
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            writer.close()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read, record and answer one request; False when the connection should end."""
        request_line = await reader.readline()
        if not request_line.strip():
            return False
        method, target, _version = request_line.decode("latin-1").split()
        headers = await _read_headers(reader)
        length = int(headers.get("content-length", "0"))
        if length > _MAX_BODY or "chunked" in headers.get("transfer-encoding", ""):
            await _respond(writer, 400, {"message": "Content-Length bodies only"}, keep_alive=False)
            return False
        body = await reader.readexactly(length)
        request = _parse_request(method, target, headers, body)
        status, payload = self._route(request)
        request.status, request.reply = status, payload
        await self._record(request)
        if status == 0:  # "hang": answer never comes; stop() cancels this handler
            await asyncio.Event().wait()
        keep_alive = headers.get("connection", "").lower() != "close"
        await _respond(writer, status, payload, keep_alive=keep_alive)
        return keep_alive

    async def _record(self, request: RecordedRequest) -> None:
        self.requests.append(request)
        async with self._request_seen:
            self._request_seen.notify_all()

    def _route(self, request: RecordedRequest) -> tuple[int, Mapping[str, Any] | None]:
        """Match a provider route and decide the reply; (0, None) means never answer."""
        for control in CONTROL_ROUTES:
            match = control.path.match(request.path) if control.method == request.method else None
            found = control.classify(request.form, request.json) if match else None
            if match and found:
                request.provider, (request.action, request.transfer_to) = control.provider, found
                request.call_id = match.groupdict().get("call_id")
                return self._control_reply(control, match, request)
        for name, cls in PROVIDERS.items():
            route = cls.hangup_route
            match = route.path.match(request.path) if route and route.method == request.method else None
            if route and match:
                request.provider, request.call_id = name, match["call_id"]
                request.is_hangup = route.is_hangup(request.form, request.json)
                return self._reply(route, match, request)
        return 404, {"message": f"no fake route for {request.method} {request.path}"}

    def _reply(self, route: HangupRoute, match: Any, request: RecordedRequest) -> tuple[int, Mapping[str, Any] | None]:
        if self.mode == "hang":
            return 0, None
        if self.mode == "error":
            return 500, {"message": "simulated server error"}
        if self.mode == "not_found":
            return route.gone_status, route.gone_body
        if request.is_hangup and self.close_on_hangup and request.call_id in self._calls:
            self._calls[request.call_id]()
        return route.ok_status, route.ok_body(match)

    def _control_reply(
        self, control: ControlRoute, match: Any, request: RecordedRequest
    ) -> tuple[int, Mapping[str, Any] | None]:
        action = request.action or ""
        failure = self._failures.get((control.provider, action)) or self._failures.get((None, action))
        if self.mode == "hang":
            return 0, None
        if failure is not None:
            return failure, error_body(control.provider, failure)
        status, body = control.reply(match, request)
        on_transfer = self._transfers.get(request.call_id or "")
        if action == "transfer" and on_transfer is not None:
            on_transfer(request.transfer_to or "?")
        return status, body


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
        if len(headers) > 100:
            raise ValueError("too many headers")


def _parse_request(method: str, target: str, headers: dict[str, str], body: bytes) -> RecordedRequest:
    parts = urlsplit(target)
    request = RecordedRequest(method.upper(), unquote(parts.path), headers, body)
    content_type = headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in content_type:
        request.form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    elif "json" in content_type and body:
        with contextlib.suppress(ValueError):
            request.json = json.loads(body)
    return request


async def _respond(
    writer: asyncio.StreamWriter, status: int, payload: Mapping[str, Any] | None, *, keep_alive: bool
) -> None:
    body = b"" if payload is None or status == 204 else json.dumps(payload).encode()
    head = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
        f"Content-Length: {len(body)}",
        "Content-Type: application/json",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
