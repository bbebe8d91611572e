"""Call webhooks: each provider asks what to do with a new call; we answer "stream it to us".

=======================  ==========================================================
``POST /webhooks/twilio``  TwiML ``<Connect><Stream>`` with ``<Parameter>``s
``POST /webhooks/telnyx``  TeXML ``<Connect><Stream bidirectionalMode="rtp">``
``POST|GET /webhooks/plivo``  Plivo XML ``<Stream bidirectional keepCallAlive>``
``GET|POST /webhooks/vonage``  NCCO ``connect`` to a websocket endpoint
``GET|POST /webhooks/exotel``  ``{"url": "wss://..."}`` for a Voicebot applet's dynamic URL
=======================  ==========================================================

The rule (docs/security.md): **no route answers a request it cannot verify.** A route whose
provider credential is not configured answers 404 (and logs why); a bad or missing signature
gets 403 (401 for Exotel's Basic credentials). Only a verified request gets an answer with a
stream token, minted for the call id read from the *signed* content and nothing else.

Bodies are capped at ``MAX_WEBHOOK_BODY_BYTES`` by Content-Length and while streaming (413)
and must arrive within ``ServerConfig.webhook_body_timeout`` seconds (408), and are parsed
once, after the route knows it can verify them, in the format the body itself has (never the
one the unsigned Content-Type claims) and with no field name repeated (``webhook_fields``).
A call id is checked against its provider's format before a token is minted for it.

Each answered signed request is remembered (``SignedRequestStore``) so a replay gets the same
single-use token back instead of a fresh one, keyed on what the MAC authenticates and not on
the request's bytes: every spelling of one signed request (fields reordered or re-encoded, a
port added to Host, another ``Bearer`` spelling) carries the same signature, so it maps to
the same entry. Twilio: the decoded signature (+ algorithm); Plivo: the nonce and the
signature that matched; Telnyx: timestamp and signature; Vonage: the JWT's ``jti``, or its
signature bytes without one. Twilio and Plivo are remembered for ``UNTIMED_MEMORY_S``,
Telnyx and Vonage for their freshness window. Refusals are logged (never with a token or
secret) and counted per (provider, reason) in ``app.state.webhook_refusals``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect

from phonewire.server.config import ServerConfig
from phonewire.server.prewarm import PrewarmCall
from phonewire.telephony import documents
from phonewire.telephony.request_memory import (
    UNTIMED_MEMORY_S,
    InMemorySignedRequestStore,
    SignedRequestStore,
    remember_async,
)
from phonewire.telephony.signatures import (
    TELNYX_TOLERANCE_S,
    VONAGE_MAX_AGE_S,
    SignatureError,
    jwt_signature_bytes,
    plivo_v3_matched_signature,
    public_url,
    signature_bytes,
    verify_basic_auth,
    verify_telnyx,
    verify_twilio,
    verify_vonage_jwt,
    vonage_query_payloads,
)
from phonewire.telephony.tokens import STREAM_TOKEN_PARAMETER, StreamTokenSigner
from phonewire.telephony.webhook_fields import (
    MAX_WEBHOOK_BODY_BYTES,
    CallFields,
    MultiFields,
    WebhookBodyError,
    call_fields,
    invalid_call_reason,
    parse_form,
    parse_pairs,
    parse_signed_body,
)

__all__ = ["webhook_router"]

logger = logging.getLogger("phonewire.webhooks")
XML = "application/xml"
JSON = "application/json"

#: Seconds a webhook body may take to arrive once its headers have (``ServerConfig`` overrides).
DEFAULT_BODY_TIMEOUT = 5.0
#: What each provider documents for its call webhooks' bodies (``parse_signed_body``):
#: Twilio forms (JSON only under ``bodySHA256``), Telnyx TeXML forms and Call Control JSON,
#: Plivo forms, Vonage JSON. Exotel is authenticated by Basic credentials, not a body MAC.
BODY_FORMATS: dict[str, frozenset[str]] = {
    "twilio": frozenset({"form", "json"}),
    "telnyx": frozenset({"form", "json"}),
    "plivo": frozenset({"form"}),
    "vonage": frozenset({"json"}),
    "exotel": frozenset({"form", "json"}),
}
_ANY_FORMAT = frozenset({"form", "json"})

# A Host (or public host) we are willing to put into a stream URL: a DNS name or a bracketed
# IPv6 literal, optional port. Anything else (spaces, "[", "/", control characters) is a 400.
_HOST = re.compile(r"(?:[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::(?P<port>[0-9]{1,5}))?")


class _Refused(Exception):
    def __init__(self, status: int, reason: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})


async def read_body(request: Request, limit: int = MAX_WEBHOOK_BODY_BYTES, timeout: float | None = None) -> bytes:
    """The body, or ``_Refused(413)`` as soon as it is known to exceed ``limit``, or
    ``_Refused(408)`` when it has not fully arrived within ``timeout`` seconds.

    A declared Content-Length over the limit is refused before reading a byte; a body without
    one (chunked) is read chunk by chunk and abandoned at the limit. ``timeout`` defaults to
    the app's ``ServerConfig.webhook_body_timeout``: a client that sends headers and then no
    body must not hold a connection (and the app's attention) for ever.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise _Refused(400, "malformed Content-Length")
        if int(declared) > limit:
            raise _Refused(413, f"body over {limit} bytes (Content-Length)")
    if timeout is None:
        config = getattr(getattr(request.app, "state", None), "config", None)
        timeout = float(getattr(config, "webhook_body_timeout", DEFAULT_BODY_TIMEOUT))
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _Refused(413, f"body over {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise _Refused(408, f"body not complete within {timeout:g}s", {"Connection": "close"}) from None
    except ClientDisconnect:
        raise _Refused(400, "client went away during the body") from None
    return b"".join(chunks)


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


class _Answers:
    def __init__(self, config: ServerConfig, signer: StreamTokenSigner | None, store: SignedRequestStore) -> None:
        self.config = config
        self.signer = signer
        self.store = store

    def stream_url(self, request: Request) -> str:
        host = self.config.public_host
        if host is None:
            # The Host header itself, and then the host public_url settled on (X-Forwarded-Host
            # when trusted): "h/x" would otherwise pass as "h" once the URL is split.
            _check_host(request.headers.get("host", ""))
            after_scheme = self.public(request).partition("://")[2]
            host = re.split(r"[/?#]", after_scheme, maxsplit=1)[0]
        _check_host(host)
        return f"{self.config.stream_scheme}://{host}{self.config.ws_path}"

    def public(self, request: Request) -> str:
        return public_url(request.scope, request.headers, trust_forwarded=self.config.trust_forwarded)

    async def parameters(
        self, provider: str, call: CallFields, *, replay_key: str | None, remember_until: float, numbers: bool = True
    ) -> dict[str, str]:
        # Plivo documents extraHeaders keys as alphanumeric only, so it gets From/To.
        keys = ("From", "To") if provider == "plivo" else ("from_number", "to_number")
        values = (call.from_number, call.to_number) if numbers else (None, None)
        params = {k: v for k, v in zip(keys, values, strict=True) if v}
        if self.signer is not None and call.call_id:
            account = (call.account_id or "") if provider == "twilio" else ""
            token = self.signer.mint(call.call_id, provider=provider, account=account)
            if replay_key is not None:
                try:
                    token = await remember_async(self.store, f"{provider}:{replay_key}", token, remember_until)
                except Exception as exc:  # a shared store down: no token we could not make single-answer
                    logger.warning("! webhook request memory unavailable (%s): answering 503", type(exc).__name__)
                    raise _Refused(503, "request memory unavailable") from None
            params[STREAM_TOKEN_PARAMETER] = token
        return params


def webhook_router(config: ServerConfig, signer: StreamTokenSigner | None) -> APIRouter:
    router = APIRouter(prefix=config.webhook_prefix)
    store: SignedRequestStore = config.webhook_request_store or InMemorySignedRequestStore()
    answers = _Answers(config, signer, store)

    @router.post("/twilio")
    async def twilio(request: Request) -> Response:
        try:
            token = _configured(config.twilio_auth_token, "TWILIO_AUTH_TOKEN")
            stream_url = answers.stream_url(request)
            body = await read_body(request)
            form, _ = _parse(request, body, BODY_FORMATS["twilio"])
            signature = request.headers.get("x-twilio-signature")
            url = answers.public(request)
            raw = body if form is None and body else None
            if not verify_twilio(url, form, signature, token, body=raw):
                raise _Refused(403, "bad or missing signature")
            assert signature is not None  # verified above
            call = call_fields("twilio", form, None)
            _check_ids("twilio", call)
            _prewarm(request, "twilio", call)
            # The MAC covers URL + sorted fields, not these bytes: key on the MAC itself.
            replay_key = f"sha1:{(signature_bytes(signature) or b'').hex()}"
            params = await answers.parameters("twilio", call, replay_key=replay_key, remember_until=_untimed())
        except _Refused as refused:
            return _refuse(request, "twilio", refused)
        return Response(documents.twiml_connect_stream(stream_url, params), media_type=XML)

    @router.post("/telnyx")
    async def telnyx(request: Request) -> Response:
        try:
            key = _configured(config.telnyx_public_key, "TELNYX_PUBLIC_KEY")
            stream_url = answers.stream_url(request)
            body = await read_body(request)
            signature = request.headers.get("telnyx-signature-ed25519")
            timestamp = request.headers.get("telnyx-timestamp")
            if not verify_telnyx(body, signature, timestamp, key):
                raise _Refused(403, "bad, stale or missing signature")
            assert signature is not None and timestamp is not None  # verified above
            # Only the body (the query string is not signed), read as what it is (not as the
            # unsigned Content-Type says): TeXML sends forms, Call Control JSON.
            form, data = _parse(request, body, BODY_FORMATS["telnyx"])
            call = call_fields("telnyx", form, data)
            _check_ids("telnyx", call)
            _prewarm(request, "telnyx", call)
            replay_key = f"{timestamp}:{(signature_bytes(signature) or b'').hex()}"
            params = await answers.parameters(
                "telnyx", call, replay_key=replay_key, remember_until=int(timestamp) + TELNYX_TOLERANCE_S
            )
        except _Refused as refused:
            return _refuse(request, "telnyx", refused)
        doc = documents.telnyx_texml(
            stream_url,
            params,
            codec=config.telnyx_codec,
            sampling_rate=config.telnyx_sampling_rate if config.telnyx_codec.upper() == "L16" else 8000,
        )
        return Response(doc, media_type=XML)

    @router.api_route("/plivo", methods=["GET", "POST"])
    async def plivo(request: Request) -> Response:
        try:
            token = _configured(config.plivo_auth_token, "PLIVO_AUTH_TOKEN")
            stream_url = answers.stream_url(request)
            body = await read_body(request)
            form: MultiFields | None
            signed_form: MultiFields | None = None  # GET: the query is part of the signed URL
            if request.method == "GET":
                form = _query(request)
            else:
                form = signed_form = _parse(request, body, BODY_FORMATS["plivo"])[0]
            nonce = request.headers.get("x-plivo-signature-v3-nonce")
            signature = request.headers.get("x-plivo-signature-v3")
            url = answers.public(request)
            matched = plivo_v3_matched_signature(request.method, url, signed_form, nonce, signature, token)
            if matched is None or nonce is None:
                raise _Refused(403, "bad or missing signature")
            call = call_fields("plivo", form, None)
            _check_ids("plivo", call)
            _prewarm(request, "plivo", call)
            # The MAC covers URL + sorted fields + nonce, not these bytes: key on nonce + MAC.
            replay_key = _digest(nonce, matched)
            params = await answers.parameters("plivo", call, replay_key=replay_key, remember_until=_untimed())
        except _Refused as refused:
            return _refuse(request, "plivo", refused)
        doc = documents.plivo_stream_xml(stream_url, params, content_type=config.plivo_content_type)
        return Response(doc, media_type=XML)

    @router.api_route("/vonage", methods=["GET", "POST"])
    async def vonage(request: Request) -> Response:
        try:
            secret = _configured(config.vonage_signature_secret, "VONAGE_SIGNATURE_SECRET")
            stream_url = answers.stream_url(request)
            body = await read_body(request)
            jwt = request.headers.get("authorization")
            if request.method == "GET":
                # One parse, repeated names refused: the ids come from exactly the mapping
                # the payload_hash covers.
                pairs = _query_pairs(request)
                claims = _vonage_claims(jwt, secret, vonage_query_payloads(pairs))
                call = call_fields("vonage", {name: [value] for name, value in pairs}, None)
            else:
                claims = _vonage_claims(jwt, secret, [body])
                form, data = _parse(request, body, BODY_FORMATS["vonage"])
                call = call_fields("vonage", form, data)
            _check_ids("vonage", call)
            _prewarm(request, "vonage", call)
            # The jti (inside the signed claims), else the signature bytes: never the header's
            # text, which has many spellings ("bearer  <jwt>") for one signed JWT.
            jti = claims.get("jti")
            replay_key = (
                f"jti:{jti}" if isinstance(jti, str) and jti else f"sig:{(jwt_signature_bytes(jwt) or b'').hex()}"
            )
            issued_at = float(claims["iat"])  # verify_vonage_jwt checked it is a finite number
            headers = await answers.parameters(
                "vonage", call, replay_key=replay_key, remember_until=issued_at + VONAGE_MAX_AGE_S
            )
        except _Refused as refused:
            return _refuse(request, "vonage", refused)
        if call.call_id:
            headers["call_uuid"] = call.call_id  # Vonage never names the call on the socket itself
        doc = documents.vonage_ncco(stream_url, headers, content_type=config.vonage_content_type)
        return Response(doc, media_type=JSON)

    @router.api_route("/exotel", methods=["GET", "POST"])
    async def exotel(request: Request) -> Response:
        try:
            credentials = _configured(config.exotel_webhook_basic_auth, "PHONEWIRE_EXOTEL_WEBHOOK_AUTH")
            if not verify_basic_auth(request.headers.get("authorization"), credentials):
                raise _Refused(401, "bad or missing Basic credentials", {"WWW-Authenticate": 'Basic realm="phonewire"'})
            stream_url = answers.stream_url(request)
            body = await read_body(request)
            form = _query(request) if request.method == "GET" else _parse(request, body, BODY_FORMATS["exotel"])[0]
            call = call_fields("exotel", form, None)
            _check_ids("exotel", call)
            # Exotel allows 3 custom parameters in 256 characters: the token only, no numbers.
            params = await answers.parameters(
                "exotel", call, replay_key=None, remember_until=0, numbers=False
            )
        except _Refused as refused:
            return _refuse(request, "exotel", refused)
        return Response(documents.exotel_stream_url(stream_url, params), media_type=JSON)

    return router


def _prewarm(request: Request, provider: str, call: CallFields) -> None:
    """The webhook is verified: start the app's prewarm for this call id (server/prewarm.py)."""
    registry = getattr(request.app.state, "prewarm", None)
    if registry is not None and call.call_id:
        registry.start(PrewarmCall(provider, call.call_id, call.from_number, call.to_number))


def _check_host(host: str) -> None:
    match = _HOST.fullmatch(host)
    if match is None or (match["port"] is not None and not 0 < int(match["port"]) < 65536):
        raise _Refused(400, "malformed Host header")


def _configured(credential: str | None, env_name: str) -> str:
    if not credential:
        raise _Refused(404, f"no {env_name} configured, so this webhook cannot be verified")
    return credential


def _untimed() -> float:
    return time.time() + UNTIMED_MEMORY_S


def _parse(
    request: Request, body: bytes, accepts: frozenset[str] = _ANY_FORMAT
) -> tuple[MultiFields | None, dict[str, Any] | None]:
    """(form, JSON) of a signed body, in the format the body has (``parse_signed_body``)."""
    try:
        return parse_signed_body(request.headers.get("content-type"), body, accepts=accepts)
    except WebhookBodyError as exc:
        raise _Refused(exc.status, exc.reason) from None


def _query(request: Request) -> MultiFields:
    try:
        return parse_form(request.scope.get("query_string", b""))
    except WebhookBodyError as exc:
        raise _Refused(exc.status, exc.reason) from None


def _query_pairs(request: Request) -> list[tuple[str, str]]:
    try:
        return parse_pairs(request.scope.get("query_string", b""))
    except WebhookBodyError as exc:
        raise _Refused(exc.status, exc.reason) from None


def _check_ids(provider: str, call: CallFields) -> None:
    """``_Refused(400)`` unless every id the request names has its provider's format."""
    reason = invalid_call_reason(provider, call)
    if reason is not None:
        raise _Refused(400, reason)


def _vonage_claims(jwt: str | None, secret: str, payloads: list[bytes]) -> dict[str, Any]:
    """Claims of a JWT whose ``payload_hash`` covers one of ``payloads``, or ``_Refused(403)``.

    A JWT that is valid but covers none of them (or has no ``payload_hash``) proves nothing
    about the ids in this request: it may be a captured JWT re-sent with another ``uuid``.
    """
    for payload in payloads:
        try:
            return verify_vonage_jwt(jwt, secret, body=payload)
        except SignatureError:
            continue
    try:
        verify_vonage_jwt(jwt, secret)
    except SignatureError:
        raise _Refused(403, "bad, stale or missing JWT") from None
    raise _Refused(403, "JWT payload_hash missing or not matching this request's body or query")


def _refuse(request: Request, provider: str, refused: _Refused) -> Response:
    state = request.app.state
    counts: Counter[tuple[str, str]] | None = getattr(state, "webhook_refusals", None)
    if counts is None:
        counts = state.webhook_refusals = Counter()
    counts[(provider, refused.reason)] += 1
    logger.warning("! %s webhook refused (%d): %s", provider, refused.status, refused.reason)
    return Response(refused.reason, status_code=refused.status, headers=refused.headers)
