"""``/softphone``: a browser page that calls the bot over the raw PCM protocol on ``/ws``.

Why a minting route and why it is not an open token source (docs/softphone.md, security.md
T7): a stream token lets its holder start a verified call, so ``POST /softphone/token`` answers
only a request carrying the softphone key (``Authorization: Bearer``, compared in constant
time), only from this origin, at most ``softphone_mints_per_minute`` per process. Each token is
the usual single-use, 120 s ``StreamTokenSigner`` token, for a fresh random ``softphone-…``
call id of provider ``raw_pcm``: it cannot name anyone else's call. With the softphone off
(the default) none of these routes exist.

The page's live view of its call (transcript, latency, who is speaking) is a side channel:
``GET /softphone/events/{call_id}`` with ``Authorization: Bearer <events_key>`` (a random key
returned with the token, bound to that call id) streams that call's ``CallEvents`` as SSE.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from phonewire.serializers.raw_pcm import PROVIDER
from phonewire.server.call_events import CallEvents, CallView
from phonewire.server.config import ServerConfig
from phonewire.server.pages._common import (
    TokenBucket,
    credential_ok,
    draining,
    page_response,
    same_origin,
    sse_headers,
    sse_stream,
)
from phonewire.telephony.tokens import STREAM_TOKEN_PARAMETER, StreamTokenSigner

__all__ = ["softphone_router"]

logger = logging.getLogger("phonewire.server")

#: Calls whose events keys are remembered at once (a minted call's key lives ``KEY_TTL_SECS``).
MAX_KEYS = 256
KEY_TTL_SECS = 4 * 3600.0
#: An events stream whose call has not started after this long ends (the token has expired).
START_WAIT_SECS = 130.0


class _EventKeys:
    """call id -> (events key, expiry), bounded: the oldest key goes first."""

    def __init__(self) -> None:
        self._keys: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def add(self, call_id: str) -> str:
        now = time.monotonic()
        while self._keys and (len(self._keys) >= MAX_KEYS or next(iter(self._keys.values()))[1] < now):
            self._keys.popitem(last=False)
        key = secrets.token_urlsafe(24)
        self._keys[call_id] = (key, now + KEY_TTL_SECS)
        return key

    def check(self, call_id: str, request: Request) -> bool:
        entry = self._keys.get(call_id)
        if entry is None or entry[1] < time.monotonic():
            return False
        return credential_ok(request, entry[0], basic=False)


def softphone_router(config: ServerConfig, events: CallEvents, signer: StreamTokenSigner | None = None) -> APIRouter:
    """The softphone's routes; mount them with ``app.include_router`` (create_app does, when
    ``config.softphone``). ``events`` must be a hook of the app's ``CallRegistry``."""
    router = APIRouter()
    key = config.softphone_token or config.console_token
    bucket = TokenBucket(config.softphone_mints_per_minute)
    keys = _EventKeys()

    @router.get("/softphone", include_in_schema=False)
    async def page() -> Response:
        return page_response("softphone.html")

    @router.post("/softphone/token", include_in_schema=False)
    async def mint(request: Request) -> Response:
        if not same_origin(request):
            return JSONResponse({"error": "cross-origin request refused"}, status_code=403)
        if not credential_ok(request, key, basic=False):
            logger.warning("! softphone token refused: missing or wrong softphone key")
            return JSONResponse({"error": "softphone key required"}, status_code=401)
        wait = bucket.take()
        if wait:
            return JSONResponse(
                {"error": "too many softphone calls; try again shortly"},
                status_code=429,
                headers={"Retry-After": str(max(1, int(wait + 0.999)))},
            )
        call_id = f"softphone-{secrets.token_hex(8)}"
        token = signer.mint(call_id, provider=PROVIDER) if signer is not None else None
        body = {
            "call_id": call_id,
            "token": token,
            "token_parameter": STREAM_TOKEN_PARAMETER,
            "ws_path": config.ws_path,
            "events_path": f"/softphone/events/{call_id}",
            "events_key": keys.add(call_id),
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    @router.get("/softphone/events/{call_id}", include_in_schema=False)
    async def call_events(call_id: str, request: Request) -> Response:
        if not keys.check(call_id, request):
            return JSONResponse({"error": "events key required"}, status_code=401)

        def mine(view: CallView) -> bool:
            return view.provider == PROVIDER and view.call_id == call_id

        sub = events.subscribe(mine)
        if sub is None:
            return JSONResponse({"error": "too many event streams"}, status_code=503)
        first = events.snapshot(mine)
        stream = sse_stream(
            sub,
            first,
            until=lambda e: e.get("type") == "ended",
            max_wait_secs=START_WAIT_SECS if not first["live"] else None,
            stop=draining(request),
        )
        return StreamingResponse(stream, media_type="text/event-stream", headers=sse_headers())

    return router
