"""One live call's call control: transfer (cold or warm) and DTMF, through its provider.

Built by the transport (``transport.call_control``) from what it already knows: the
serializer (verified ids and credentials, ``target.py``), whether the stream token verified
the call (only then does any id reach a REST API), the public base URL of this server (for
the Plivo transfer XML and Twilio warm-transfer callbacks) and the server's live-call
registry (where signed status callbacks are delivered). Every request is bounded
(``client.perform``); every wait on a callback has a timeout.

Warm transfer (Twilio, the one provider here whose API does all of it on one call resource):
the person is dialled with TwiML that ``<Say>``s the briefing and then joins a conference
that starts when they enter; once Twilio reports their leg ``answered`` the caller is moved
into the same conference (hold music until the person has heard the briefing) and the
bot's stream ends. Busy, no answer, failure or the timeout leave the caller with the bot.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any, Protocol

from phonewire.frames import OutputDTMFFrame, TransferCallFrame, TransferResult
from phonewire.serializers.base import FrameSerializer
from phonewire.telephony.call_control import plivo, telnyx, twilio, vonage
from phonewire.telephony.call_control.base import CallTarget, ControlRequest, ControlResponse, Unsupported
from phonewire.telephony.call_control.client import perform

__all__ = ["CallController", "StatusWaiters"]

logger = logging.getLogger("phonewire.call_control")

#: How long a warm transfer waits for the person to answer.
WARM_ANSWER_TIMEOUT_SECS = 40.0
_FAILED = frozenset({"busy", "no-answer", "failed", "canceled", "completed"})


class StatusWaiters(Protocol):
    """The server's registry, as the controller uses it (``server.live_calls.LiveCalls``)."""

    def expect(self, ref: str) -> asyncio.Queue[Any]: ...

    def forget(self, ref: str) -> None: ...


class CallController:
    def __init__(
        self,
        serializer: FrameSerializer,
        *,
        verified: bool,
        public_base: str | None = None,
        waiters: StatusWaiters | None = None,
        own_number: str | None = None,
        timeout_secs: float = 5.0,
    ) -> None:
        self.serializer = serializer
        self.verified = verified
        self.public_base = public_base
        self.waiters = waiters
        self.timeout_secs = timeout_secs
        #: Our number on this call (the one the caller dialled): caller id for a warm transfer.
        self.own_number = own_number
        #: Every request sent, described (credentials are not in the repr), for logs and tests.
        self.sent: list[ControlRequest] = []

    @property
    def provider(self) -> str:
        return self.serializer.provider

    def target(self) -> CallTarget:
        if not self.verified:
            raise Unsupported("the call id was not verified by a stream token, so no REST request is made for it")
        from phonewire.telephony.call_control.target import call_target

        return call_target(self.serializer)

    async def _send(self, request: ControlRequest) -> ControlResponse:
        self.sent.append(request)
        return await perform(request, timeout=self.timeout_secs)

    # --- transfer --------------------------------------------------------------------------

    async def transfer(self, frame: TransferCallFrame) -> TransferResult:
        try:
            if frame.warm:
                return await self._warm(frame)
            request = self._cold_request(frame.to, frame.caller_id)
        except Unsupported as exc:
            return TransferResult(False, frame.to, str(exc))
        response = await self._send(request)
        if response.ok:
            return TransferResult(True, frame.to, f"{self.provider} accepted the transfer")
        return TransferResult(False, frame.to, _failure(self.provider, response))

    def _cold_request(self, to: str, caller_id: str | None) -> ControlRequest:
        provider = self.provider
        if provider in ("exotel", "raw_pcm"):
            raise Unsupported(
                f"{provider} cannot transfer a live call through an API: end the stream and let the "
                "call flow's next step (an Exotel Connect applet) connect the person"
            )
        target = self.target()
        if provider == "twilio":
            return twilio.transfer_request(target, to, caller_id=caller_id)
        if provider == "telnyx":
            return telnyx.transfer_request(target, to, caller_id=caller_id)
        if provider == "plivo":
            if not self.public_base:
                raise Unsupported("plivo transfers fetch XML from this server: its public URL is unknown")
            return plivo.transfer_request(target, plivo.transfer_xml_url(self.public_base, to, caller_id))
        if provider == "vonage":
            return vonage.transfer_request(target, to, caller_id=caller_id)
        raise Unsupported(f"{provider}: no call control")

    async def _warm(self, frame: TransferCallFrame) -> TransferResult:
        if self.provider != "twilio":
            raise Unsupported(
                f"warm transfer needs conferencing through the API; phonewire does it on Twilio, not {self.provider}"
            )
        if self.waiters is None or not self.public_base:
            raise Unsupported("warm transfer needs the server's callback routes (create_app) and its public URL")
        target = self.target()
        room = f"pw-{secrets.token_hex(8)}"
        ref = secrets.token_urlsafe(12)
        events = self.waiters.expect(ref)
        try:
            return await self._warm_dial(frame, target, room, ref, events)
        finally:
            self.waiters.forget(ref)

    async def _warm_dial(
        self, frame: TransferCallFrame, target: CallTarget, room: str, ref: str, events: asyncio.Queue[Any]
    ) -> TransferResult:
        briefing = twilio.conference_twiml(room, say=frame.summary, starts=True, ends=True)
        callback = f"{self.public_base}/call-control/twilio/status?ref={ref}"
        caller_id = frame.caller_id or self.own_number or ""
        create = twilio.create_call_request(
            target.api_root, target.account, target.headers, to=frame.to, from_=caller_id,
            twiml=briefing, status_callback=callback, timeout_s=int(WARM_ANSWER_TIMEOUT_SECS) - 5,
        )  # fmt: skip
        response = await self._send(create)
        if not response.ok:
            return TransferResult(False, frame.to, _failure("twilio", response), warm=True)
        status = await _first_final(events, WARM_ANSWER_TIMEOUT_SECS)
        if status != "answered":
            return TransferResult(False, frame.to, f"the person did not answer ({status})", warm=True)
        join = twilio.update_request(target, twilio.conference_twiml(room, starts=False, ends=True), "warm_transfer")
        moved = await self._send(join)
        if not moved.ok:
            return TransferResult(False, frame.to, _failure("twilio", moved), warm=True)
        return TransferResult(True, frame.to, "the person answered and was briefed", warm=True)

    # --- DTMF ------------------------------------------------------------------------------

    async def send_dtmf(self, digits: str) -> tuple[bool, str, OutputDTMFFrame | None]:
        """(ok, how, frame to push): over the stream where the protocol has it (Plivo,
        raw PCM) or as in-band tones (Twilio, Exotel); through the API on Telnyx and Vonage."""
        if self.serializer.supports_dtmf_out or self.provider in ("twilio", "exotel"):
            return True, "stream", OutputDTMFFrame(buttons=digits)
        try:
            target = self.target()
        except Unsupported as exc:
            return False, str(exc), None
        request = (
            telnyx.dtmf_request(target, digits) if self.provider == "telnyx" else vonage.dtmf_request(target, digits)
        )
        response = await self._send(request)
        return response.ok, "api" if response.ok else _failure(self.provider, response), None


async def _first_final(events: asyncio.Queue[Any], timeout: float) -> str:
    try:
        async with asyncio.timeout(timeout):
            while True:
                status = getattr(await events.get(), "status", "")
                if status == "answered" or status in _FAILED:
                    return str(status)
    except TimeoutError:
        return "no answer in time"


def _failure(provider: str, response: ControlResponse) -> str:
    if response.status == 0:
        return f"{provider} did not answer"
    return f"{provider} refused the request (HTTP {response.status})"
