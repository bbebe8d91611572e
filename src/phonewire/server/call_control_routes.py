"""Signed call-control callbacks: call status, answering-machine verdicts, transfer XML.

=====================================================  =====================================
``POST /call-control/twilio/status?ref=``               ``CallStatus`` (StatusCallback)
``POST /call-control/twilio/amd?ref=``                  ``AnsweredBy`` (AsyncAmdStatusCallback)
``POST /call-control/telnyx/events``                    Call Control webhooks (status, AMD;
                                                        ``call.answered`` starts an outbound
                                                        call's stream)
``GET|POST /call-control/plivo/status?ref=``            ring/hangup callbacks
``GET|POST /call-control/plivo/amd?ref=``               ``Machine`` (machine_detection_url)
``GET|POST /call-control/plivo/transfer?to=``           the ``<Dial>`` XML a transfer fetches
``POST /call-control/vonage/events?ref=``               event webhooks (status, human/machine)
=====================================================  =====================================

Same rule as the call webhooks (``webhooks.py``, whose verification this reuses): nothing is
acted on unless the provider's signature covers it; an unconfigured credential is a 404, a
bad signature a 403. Call ids and refs come from the signed content only. Events go to the
live call with that verified id (``live_calls.LiveCalls``) and to whoever waits on the ref.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
from typing import Any

from fastapi import APIRouter, Request, Response, WebSocket

from phonewire.frames import AnsweringMachineFrame, CallStatusFrame
from phonewire.server.config import ServerConfig
from phonewire.server.live_calls import LiveCalls
from phonewire.server.webhooks import _configured, _parse, _query, _refuse, _Refused, _vonage_claims, read_body
from phonewire.telephony.call_control import plivo, telnyx, twilio, vonage
from phonewire.telephony.call_control.client import perform
from phonewire.telephony.call_control.outbound import DIAL_REF_PREFIX
from phonewire.telephony.signatures import public_url, verify_plivo_v3, verify_telnyx, verify_twilio
from phonewire.telephony.tokens import STREAM_TOKEN_PARAMETER, StreamTokenSigner
from phonewire.telephony.webhook_fields import MultiFields, first

__all__ = ["attach_live_call", "call_control_router", "public_base"]

PREFIX = "/call-control"
logger = logging.getLogger("phonewire.call_control")


def _ok() -> Response:
    return Response(status_code=204)


_REF = re.compile(r"[A-Za-z0-9_-]{8,64}")


def public_base(config: ServerConfig, host: str) -> str:
    """``https://host`` of this server as providers reach it (``http`` for a ``ws`` stream scheme)."""
    scheme = "https" if config.stream_scheme == "wss" else "http"
    return f"{scheme}://{config.public_host or host}"


def attach_live_call(transport: Any, websocket: WebSocket, config: ServerConfig) -> None:
    """Give a call's transport this server's public URL and the live-call registry."""
    app = websocket.scope.get("app")
    transport.live_calls = getattr(getattr(app, "state", None), "live_calls", None)
    transport.public_base = public_base(config, websocket.headers.get("host", "localhost"))


def _ref(value: str | None) -> str | None:
    return value if value and _REF.fullmatch(value) else None


def call_control_router(config: ServerConfig, signer: StreamTokenSigner | None, live: LiveCalls) -> APIRouter:
    router = APIRouter(prefix=PREFIX)

    async def twilio_form(request: Request) -> MultiFields:
        token = _configured(config.twilio_auth_token, "TWILIO_AUTH_TOKEN")
        body = await read_body(request)
        form = _parse(request, body)[0] or {}
        url = public_url(request.scope, request.headers, trust_forwarded=config.trust_forwarded)
        if not verify_twilio(url, form, request.headers.get("x-twilio-signature"), token):
            raise _Refused(403, "bad or missing signature")
        return form

    @router.post("/twilio/status")
    async def twilio_status(request: Request) -> Response:
        try:
            form = await twilio_form(request)
        except _Refused as refused:
            return _refuse(request, "twilio", refused)
        fields = {k: v[0] for k, v in form.items() if v}
        event = CallStatusFrame(status=twilio.normalise_status(fields), detail=fields.get("CallStatus", ""),
                                provider="twilio", raw=fields)  # fmt: skip
        await live.deliver("twilio", fields.get("CallSid"), _ref(request.query_params.get("ref")), event)
        return _ok()

    @router.post("/twilio/amd")
    async def twilio_amd(request: Request) -> Response:
        try:
            form = await twilio_form(request)
        except _Refused as refused:
            return _refuse(request, "twilio", refused)
        answered_by = first(form, "AnsweredBy") or "unknown"
        result, beep = twilio.amd_result(answered_by)
        event = AnsweringMachineFrame(result=result, detail=answered_by, beep=beep, provider="twilio")
        await live.deliver("twilio", first(form, "CallSid"), _ref(request.query_params.get("ref")), event)
        return _ok()

    @router.post("/telnyx/events")
    async def telnyx_events(request: Request) -> Response:
        try:
            key = _configured(config.telnyx_public_key, "TELNYX_PUBLIC_KEY")
            body = await read_body(request)
            sig, ts = request.headers.get("telnyx-signature-ed25519"), request.headers.get("telnyx-timestamp")
            if not verify_telnyx(body, sig, ts, key):
                raise _Refused(403, "bad, stale or missing signature")
            data = _parse(request, body)[1] or {}
        except _Refused as refused:
            return _refuse(request, "telnyx", refused)
        stream_url = f"{config.stream_scheme}://{config.public_host or request.headers.get('host', '')}{config.ws_path}"
        await _telnyx_event(data, live, lambda call_id: _start_telnyx_stream(config, signer, stream_url, call_id))
        return _ok()

    async def plivo_form(request: Request) -> MultiFields:
        token = _configured(config.plivo_auth_token, "PLIVO_AUTH_TOKEN")
        body = await read_body(request)
        form = _query(request) if request.method == "GET" else (_parse(request, body)[0] or {})
        signed = None if request.method == "GET" else form
        url = public_url(request.scope, request.headers, trust_forwarded=config.trust_forwarded)
        nonce, sig = request.headers.get("x-plivo-signature-v3-nonce"), request.headers.get("x-plivo-signature-v3")
        if not verify_plivo_v3(request.method, url, signed, nonce, sig, token):
            raise _Refused(403, "bad or missing signature")
        return form

    @router.api_route("/plivo/status", methods=["GET", "POST"])
    async def plivo_status(request: Request) -> Response:
        try:
            form = await plivo_form(request)
        except _Refused as refused:
            return _refuse(request, "plivo", refused)
        fields = {k: v[0] for k, v in form.items() if v}
        event = CallStatusFrame(status=plivo.normalise_status(fields), detail=fields.get("CallStatus", ""),
                                provider="plivo", raw=fields)  # fmt: skip
        await live.deliver("plivo", fields.get("CallUUID"), _ref(request.query_params.get("ref")), event)
        return _ok()

    @router.api_route("/plivo/amd", methods=["GET", "POST"])
    async def plivo_amd(request: Request) -> Response:
        try:
            form = await plivo_form(request)
        except _Refused as refused:
            return _refuse(request, "plivo", refused)
        fields = {k: v[0] for k, v in form.items() if v}
        result, beep = plivo.amd_result(fields)
        event = AnsweringMachineFrame(result=result, detail=fields.get("Machine", ""), beep=beep, provider="plivo")
        await live.deliver("plivo", fields.get("CallUUID"), _ref(request.query_params.get("ref")), event)
        return _ok()

    @router.api_route("/plivo/transfer", methods=["GET", "POST"])
    async def plivo_transfer(request: Request) -> Response:
        try:
            await plivo_form(request)  # the signature covers the URL, so ``to`` is ours
        except _Refused as refused:
            return _refuse(request, "plivo", refused)
        to = request.query_params.get("to", "")
        if not to:
            return Response("no destination", status_code=400)
        xml = plivo.dial_xml(to, request.query_params.get("caller_id"))
        return Response(xml, media_type="application/xml")

    @router.post("/vonage/events")
    async def vonage_events(request: Request) -> Response:
        try:
            secret = _configured(config.vonage_signature_secret, "VONAGE_SIGNATURE_SECRET")
            body = await read_body(request)
            _vonage_claims(request.headers.get("authorization"), secret, [body])
            data = _parse(request, body)[1] or {}
        except _Refused as refused:
            return _refuse(request, "vonage", refused)
        ref, uuid = _ref(request.query_params.get("ref")), data.get("uuid")
        call_id = uuid if isinstance(uuid, str) else None
        amd = vonage.amd_result(data)
        if amd is not None:
            amd_event = AnsweringMachineFrame(result=amd[0], detail=str(data.get("sub_state") or data.get("status")),
                                              beep=amd[1], provider="vonage")  # fmt: skip
            await live.deliver("vonage", call_id, ref, amd_event)
        status = vonage.event_status(data)
        if status is not None:
            event = CallStatusFrame(status=status, detail=str(data.get("status")), provider="vonage", raw=data)
            await live.deliver("vonage", call_id, ref, event)
        return _ok()

    return router


async def _telnyx_event(data: dict[str, Any], live: LiveCalls, start_stream: Any) -> None:
    inner = data.get("data") if isinstance(data.get("data"), dict) else {}
    assert isinstance(inner, dict)
    event_type, payload = str(inner.get("event_type", "")), inner.get("payload")
    if not isinstance(payload, dict):
        return
    call_id = payload.get("call_control_id") if isinstance(payload.get("call_control_id"), str) else None
    ref = _ref(_client_state(payload.get("client_state")))
    amd = telnyx.amd_result(event_type, payload)
    if amd is not None:
        event = AnsweringMachineFrame(result=amd[0], detail=str(payload.get("result", "")), beep=amd[1],
                                      provider="telnyx")  # fmt: skip
        await live.deliver("telnyx", call_id, ref, event)
    status = telnyx.event_status(event_type, payload)
    if status is None:
        return
    if status == "answered" and ref and call_id and ref.startswith(DIAL_REF_PREFIX):
        await start_stream(call_id)  # one of our outbound calls (place_call set the ref)
    raw = {"event_type": event_type, "hangup_cause": payload.get("hangup_cause")}
    await live.deliver(
        "telnyx", call_id, ref, CallStatusFrame(status=status, detail=event_type, provider="telnyx", raw=raw)
    )


async def _start_telnyx_stream(
    config: ServerConfig, signer: StreamTokenSigner | None, stream_url: str, call_control_id: str
) -> None:
    """An answered outbound call: start its stream with a token for the id Telnyx signed."""
    kwargs = config.serializer_kwargs.get("telnyx", {})
    api_key = kwargs.get("api_key") or os.environ.get("TELNYX_API_KEY")
    if not api_key:
        logger.warning("! telnyx call answered but no TELNYX_API_KEY to start its stream")
        return
    params = getattr(kwargs.get("params"), "base_url", None)
    root = params or "https://api.telnyx.com"
    token = {STREAM_TOKEN_PARAMETER: signer.mint(call_control_id, provider="telnyx")} if signer else {}
    request = telnyx.streaming_start_request(
        root, api_key, call_control_id, stream_url=stream_url, parameters=token, codec=config.telnyx_codec
    )
    await perform(request)


def _client_state(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        return None
