"""Outbound calls: ``place_call`` asks the provider to dial, and the answered call streams to the bot.

The call is created so that, once answered, the provider asks *this server's signed webhook*
what to do (Twilio ``Url``, Plivo ``answer_url``, Vonage ``answer_url``) - the same route as an
inbound call, which mints the stream token for the call id the provider signed. Telnyx Call
Control has no such fetch: the signed ``call.answered`` webhook (``call_control_routes``)
starts the stream with a token for that call. Status callbacks (ringing, answered, busy,
no-answer, failed) and the answering-machine verdict come back to ``/call-control/...``
routes with a random ``ref`` in their URL (signed by the provider with the rest of it).

``OutboundLimiter`` bounds calls in progress and the placing rate: a slot is held from the
request until a final status arrives (or ``slot_secs`` pass, for a dialler in another process).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from phonewire.exceptions import ConfigurationError, PhonewireError
from phonewire.telephony.call_control import plivo, telnyx, twilio, vonage
from phonewire.telephony.call_control.base import ControlRequest, ControlResponse
from phonewire.telephony.call_control.client import perform
from phonewire.telephony.rest_auth import basic_auth_header

__all__ = ["DIAL_REF_PREFIX", "OutboundLimitError", "OutboundLimiter", "PlacedCall", "place_call"]

#: Refs of our outbound calls start with this (Telnyx: only such calls get a stream at answer).
DIAL_REF_PREFIX = "pwout-"
FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
_ROOTS = {
    "twilio": "https://api.twilio.com",
    "telnyx": "https://api.telnyx.com",
    "plivo": "https://api.plivo.com",
    "vonage": "https://api.nexmo.com",
}


class OutboundLimitError(PhonewireError):
    """No outbound slot became free within ``max_wait_secs``."""


@dataclass(slots=True)
class PlacedCall:
    """The provider accepted the call. ``call_id``: Twilio CallSid, Telnyx call_control_id,
    Vonage uuid, Plivo ``request_uuid`` (its CallUUID arrives with the answer)."""

    provider: str
    call_id: str
    ref: str
    status: int
    body: Any = field(default=None, repr=False)


class OutboundLimiter:
    """At most ``max_concurrent`` calls in progress, placed at most ``per_second`` a second."""

    def __init__(
        self, max_concurrent: int = 10, per_second: float = 1.0, *, slot_secs: float = 3600, max_wait_secs: float = 30
    ) -> None:
        if max_concurrent < 1 or per_second <= 0:
            raise ConfigurationError("max_concurrent must be >= 1 and per_second > 0")
        self.max_concurrent, self.per_second = max_concurrent, per_second
        self.slot_secs, self.max_wait_secs = slot_secs, max_wait_secs
        self._active: dict[str, float] = {}  # ref -> when the slot lapses
        self._next_at = 0.0
        self._changed = asyncio.Condition()

    @property
    def active(self) -> int:
        self._expire()
        return len(self._active)

    def _expire(self) -> None:
        now = time.monotonic()
        for ref in [r for r, until in self._active.items() if until <= now]:
            del self._active[ref]

    async def acquire(self, ref: str) -> None:
        try:
            async with asyncio.timeout(self.max_wait_secs), self._changed:
                while True:
                    self._expire()
                    wait = self._next_at - time.monotonic()
                    if len(self._active) < self.max_concurrent and wait <= 0:
                        break
                    with_timeout = wait if wait > 0 else min(self.slot_secs, 1.0)
                    try:
                        async with asyncio.timeout(with_timeout):
                            await self._changed.wait()
                    except TimeoutError:
                        continue
        except TimeoutError:
            raise OutboundLimitError(f"no outbound call slot within {self.max_wait_secs:g}s") from None
        self._active[ref] = time.monotonic() + self.slot_secs
        self._next_at = time.monotonic() + 1.0 / self.per_second

    async def release(self, ref: str) -> None:
        if self._active.pop(ref, None) is not None:
            async with self._changed:
                self._changed.notify_all()

    def on_event(self, event: Any, ref: str) -> None:
        """A ``LiveCalls`` listener: a final status frees the call's slot."""
        if getattr(event, "status", None) in FINAL_STATUSES and ref in self._active:
            asyncio.get_running_loop().create_task(self.release(ref))


def _need(kw: dict[str, Any], key: str, env: str) -> Any:
    value = kw.get(key) or os.environ.get(env)
    if not value:
        raise ConfigurationError(f"place_call needs {key} (or {env})")
    return value if isinstance(value, bytes) else str(value)


def build_create_request(
    provider: str, to: str, from_: str, bot: str, ref: str, *, amd: bool, **kw: Any
) -> ControlRequest:
    """The provider's create-call request (sans-I/O); ``bot`` is this server's public base URL."""
    bot = bot.rstrip("/")
    root = str(kw.get("api_base") or _ROOTS.get(provider, ""))
    cc = f"{bot}/call-control/{provider}"
    timeout = kw.get("ring_timeout_s")
    if provider == "twilio":
        account, token = _need(kw, "account_sid", "TWILIO_ACCOUNT_SID"), _need(kw, "auth_token", "TWILIO_AUTH_TOKEN")
        headers = {"Authorization": basic_auth_header(str(kw.get("api_key_sid") or account), token)}
        return twilio.create_call_request(
            root, account, headers, to=to, from_=from_, url=f"{bot}/webhooks/twilio",
            status_callback=f"{cc}/status?ref={ref}", amd_callback=f"{cc}/amd?ref={ref}" if amd else None,
            timeout_s=timeout,
        )  # fmt: skip
    if provider == "telnyx":
        key, connection = _need(kw, "api_key", "TELNYX_API_KEY"), _need(kw, "connection_id", "TELNYX_CONNECTION_ID")
        return telnyx.dial_request(
            root, key, connection_id=connection, to=to, from_=from_, webhook_url=f"{cc}/events", ref=ref,
            amd="detect" if amd else None, timeout_s=timeout,
        )  # fmt: skip
    if provider == "plivo":
        return plivo.create_call_request(
            root, _need(kw, "auth_id", "PLIVO_AUTH_ID"), _need(kw, "auth_token", "PLIVO_AUTH_TOKEN"), to=to,
            from_=from_, answer_url=f"{bot}/webhooks/plivo", status_url=f"{cc}/status?ref={ref}",
            amd_url=f"{cc}/amd?ref={ref}" if amd else None, timeout_s=timeout,
        )  # fmt: skip
    if provider == "vonage":
        from phonewire.telephony.rest_auth import vonage_application_jwt

        jwt = vonage_application_jwt(
            _need(kw, "application_id", "VONAGE_APPLICATION_ID"), _need(kw, "private_key", "VONAGE_PRIVATE_KEY")
        )
        return vonage.create_call_request(
            root, jwt, to=to, from_=from_, answer_url=f"{bot}/webhooks/vonage",
            event_url=f"{cc}/events?ref={ref}", amd=amd, timeout_s=timeout,
        )  # fmt: skip
    raise ConfigurationError(
        f"place_call does not support {provider!r}: Exotel dials out into a call flow (its Calls/connect API), "
        "raw PCM has no provider"
    )


def _call_id(provider: str, response: ControlResponse) -> str:
    body = response.body if isinstance(response.body, dict) else {}
    if provider == "telnyx":
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        return str(data.get("call_control_id", ""))  # type: ignore[union-attr]
    key = {"twilio": "sid", "plivo": "request_uuid", "vonage": "uuid"}[provider]
    return str(body.get(key, ""))


async def place_call(
    provider: str,
    to: str,
    from_: str,
    *,
    bot: str,
    amd: bool = True,
    limiter: OutboundLimiter | None = None,
    live_calls: Any = None,
    timeout_secs: float = 5.0,
    **credentials: Any,
) -> PlacedCall:
    """Create an outbound call that streams to the phonewire server at ``bot`` once answered.

    ``bot``: the server's public base URL (``https://bot.example.com``), whose webhooks and
    ``/call-control`` routes the provider will call. ``credentials``: the provider's (or its
    environment variables): Twilio ``account_sid``/``auth_token``; Telnyx ``api_key``/
    ``connection_id``; Plivo ``auth_id``/``auth_token``; Vonage ``application_id``/``private_key``;
    ``api_base`` points at another API root (``FakeProviderAPI`` in tests). ``limiter`` bounds
    concurrency and rate; ``live_calls`` (``app.state.live_calls``) frees its slots on final
    statuses. Raises ``PhonewireError`` when the provider refuses."""
    provider = provider.lower()
    ref = DIAL_REF_PREFIX + secrets.token_urlsafe(12)
    request = build_create_request(provider, to, from_, bot, ref, amd=amd, **credentials)
    if limiter is not None:
        await limiter.acquire(ref)
        if live_calls is not None and limiter.on_event not in live_calls.listeners:
            live_calls.listeners.append(limiter.on_event)
    response = await perform(request, timeout=timeout_secs)
    if not response.ok:
        if limiter is not None:
            await limiter.release(ref)
        raise PhonewireError(f"{provider} refused the call (HTTP {response.status or 'no answer'})")
    return PlacedCall(provider, _call_id(provider, response), ref, response.status, response.body)
