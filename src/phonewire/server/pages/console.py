"""``/calls``: the live call console (live calls, their turns' latency stages, transcripts).

Why protected this way: the console shows callers' numbers and what they said, so it exists
only when ``console_token`` (``PHONEWIRE_CONSOLE_TOKEN``) is set, and every route wants that
token as the HTTP Basic password (any user name; a browser asks once and then sends it with
the page's EventSource too) or as ``Authorization: Bearer`` (scripts). Checks are
constant-time. Updates are pushed over SSE (``/calls/events``: a snapshot, then each change),
never polled; ``/calls/api`` is the same snapshot as JSON.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from phonewire.server.call_events import CallEvents
from phonewire.server.config import ServerConfig
from phonewire.server.pages._common import credential_ok, draining, page_response, sse_headers, sse_stream

__all__ = ["console_router"]

_CHALLENGE = {"WWW-Authenticate": 'Basic realm="phonewire console", charset="UTF-8"', "Cache-Control": "no-store"}


def console_router(config: ServerConfig, events: CallEvents) -> APIRouter:
    """The console's routes (create_app mounts them when ``config.console_token`` is set)."""
    router = APIRouter()
    token = config.console_token

    def denied(request: Request) -> Response | None:
        if credential_ok(request, token, basic=True):
            return None
        return Response("console credentials required\n", status_code=401, headers=_CHALLENGE)

    @router.get("/calls", include_in_schema=False)
    async def page(request: Request) -> Response:
        return denied(request) or page_response("console.html")

    @router.get("/calls/api", include_in_schema=False)
    async def snapshot(request: Request) -> Response:
        return denied(request) or JSONResponse(events.snapshot(), headers={"Cache-Control": "no-store"})

    @router.get("/calls/events", include_in_schema=False)
    async def stream(request: Request) -> Response:
        refusal = denied(request)
        if refusal is not None:
            return refusal
        sub = events.subscribe()
        if sub is None:
            return JSONResponse({"error": "too many event streams"}, status_code=503)
        return StreamingResponse(
            sse_stream(sub, events.snapshot(), stop=draining(request)),
            media_type="text/event-stream",
            headers=sse_headers(),
        )

    return router
