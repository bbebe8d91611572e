"""Call webhooks: each provider asks what to do with a new call; we answer "stream it to us".

=======================  ==========================================================
``POST /webhooks/twilio``  TwiML ``<Connect><Stream>`` with ``<Parameter>``s
``POST /webhooks/telnyx``  TeXML ``<Connect><Stream bidirectionalMode="rtp">``
``POST|GET /webhooks/plivo``  Plivo XML ``<Stream bidirectional keepCallAlive>``
``GET|POST /webhooks/vonage``  NCCO ``connect`` to a websocket endpoint
``GET|POST /webhooks/exotel``  ``{"url": "wss://..."}`` for a Voicebot applet's dynamic URL
=======================  ==========================================================

When the provider's credential is configured its signature is checked (403 otherwise).
When a stream secret is configured each answer carries a fresh stream token for the call id,
plus the caller and callee numbers, as stream parameters that reach the bot's CallInfo.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping

from fastapi import APIRouter, Request, Response

from phonewire.server.config import ServerConfig
from phonewire.telephony import documents
from phonewire.telephony.signatures import public_url, verify_plivo_v3, verify_telnyx, verify_twilio, verify_vonage_jwt
from phonewire.telephony.tokens import STREAM_TOKEN_PARAMETER, StreamTokenSigner

__all__ = ["webhook_router"]

logger = logging.getLogger("phonewire.webhooks")
XML = "application/xml"
JSON = "application/json"


async def _fields(request: Request) -> tuple[bytes, dict[str, str]]:
    """Query and form fields (form-encoded bodies parsed without python-multipart)."""
    body = await request.body()
    fields = dict(request.query_params)
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        fields.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return body, fields


def _form_only(request: Request, body: bytes) -> dict[str, str]:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    return dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


class _Answers:
    def __init__(self, config: ServerConfig, signer: StreamTokenSigner | None) -> None:
        self.config = config
        self.signer = signer

    def stream_url(self, request: Request) -> str:
        host = self.config.public_host
        if host is None:
            seen = urllib.parse.urlsplit(
                public_url(request.scope, request.headers, trust_forwarded=self.config.trust_forwarded)
            )
            host = seen.netloc
        return f"{self.config.stream_scheme}://{host}{self.config.ws_path}"

    def parameters(self, provider: str, call_id: str | None, fields: Mapping[str, str]) -> dict[str, str]:
        # Plivo documents extraHeaders keys as alphanumeric only, so it gets From/To.
        keys = ("From", "To") if provider == "plivo" else ("from_number", "to_number")
        values = (fields.get("From") or fields.get("from"), fields.get("To") or fields.get("to"))
        params = {k: v for k, v in zip(keys, values, strict=True) if v}
        if self.signer is not None and call_id:
            params[STREAM_TOKEN_PARAMETER] = self.signer.mint(call_id, provider=provider)
        return params

    def public(self, request: Request) -> str:
        return public_url(request.scope, request.headers, trust_forwarded=self.config.trust_forwarded)


def webhook_router(config: ServerConfig, signer: StreamTokenSigner | None) -> APIRouter:
    router = APIRouter(prefix=config.webhook_prefix)
    answers = _Answers(config, signer)

    @router.post("/twilio")
    async def twilio(request: Request) -> Response:
        body, fields = await _fields(request)
        token = config.twilio_auth_token
        if token and not verify_twilio(
            answers.public(request), _form_only(request, body), request.headers.get("x-twilio-signature"), token
        ):
            return _forbidden("twilio")
        params = answers.parameters("twilio", fields.get("CallSid"), fields)
        return Response(documents.twiml_connect_stream(answers.stream_url(request), params), media_type=XML)

    @router.post("/telnyx")
    async def telnyx(request: Request) -> Response:
        body, fields = await _fields(request)
        key = config.telnyx_public_key
        if key and not verify_telnyx(
            body, request.headers.get("telnyx-signature-ed25519"), request.headers.get("telnyx-timestamp"), key
        ):
            return _forbidden("telnyx")
        call_id = fields.get("CallControlId") or fields.get("CallSid")
        params = answers.parameters("telnyx", call_id, fields)
        doc = documents.telnyx_texml(
            answers.stream_url(request),
            params,
            codec=config.telnyx_codec,
            sampling_rate=config.telnyx_sampling_rate if config.telnyx_codec.upper() == "L16" else 8000,
        )
        return Response(doc, media_type=XML)

    @router.api_route("/plivo", methods=["GET", "POST"])
    async def plivo(request: Request) -> Response:
        body, fields = await _fields(request)
        token = config.plivo_auth_token
        if token and not verify_plivo_v3(
            request.method,
            answers.public(request),
            _form_only(request, body),
            request.headers.get("x-plivo-signature-v3-nonce"),
            request.headers.get("x-plivo-signature-v3"),
            token,
        ):
            return _forbidden("plivo")
        params = answers.parameters("plivo", fields.get("CallUUID"), fields)
        doc = documents.plivo_stream_xml(answers.stream_url(request), params, content_type=config.plivo_content_type)
        return Response(doc, media_type=XML)

    @router.api_route("/vonage", methods=["GET", "POST"])
    async def vonage(request: Request) -> Response:
        body, fields = await _fields(request)
        secret = config.vonage_signature_secret
        if secret:
            try:
                verify_vonage_jwt(
                    request.headers.get("authorization"), secret, body=body if request.method == "POST" else None
                )
            except Exception:
                return _forbidden("vonage")
        uuid = fields.get("uuid")
        headers = answers.parameters("vonage", uuid, fields)
        if uuid:
            headers["call_uuid"] = uuid  # Vonage never names the call on the socket itself
        doc = documents.vonage_ncco(answers.stream_url(request), headers, content_type=config.vonage_content_type)
        return Response(doc, media_type=JSON)

    @router.api_route("/exotel", methods=["GET", "POST"])
    async def exotel(request: Request) -> Response:
        _, fields = await _fields(request)
        params = answers.parameters("exotel", fields.get("CallSid"), {})
        return Response(documents.exotel_stream_url(answers.stream_url(request), params), media_type=JSON)

    return router


def _forbidden(provider: str) -> Response:
    logger.warning("! %s webhook with a bad or missing signature: 403", provider)
    return Response("invalid signature", status_code=403)
