"""The call-command API on every node: ``/fleet/calls`` and ``/fleet/calls/{provider}/{call_id}/{command}``.

Why on every node: behind a load balancer an operator's request reaches any node; the node
forwards it to the call's owner over pub/sub (``commands.py``). Off unless
``FleetConfig.api_token`` is set; every request must carry ``Authorization: Bearer <token>``
(compared in constant time). A bad or missing token is 401, an unknown call 404, Redis down 503.

=============================================  ==========================================
``GET  /fleet/calls``                          the fleet's live calls (node, since, ...)
``POST /fleet/calls/{p}/{id}/hangup``          ``{"text": "goodbye"}`` optional
``POST /fleet/calls/{p}/{id}/transfer``        ``{"to": "+1555...", "warm": false}``
``POST /fleet/calls/{p}/{id}/say``             ``{"text": "..."}`` (a TTSSpeakFrame)
=============================================  ==========================================
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from phonewire.fleet.node import Fleet
from phonewire.fleet.redis_io import FleetUnavailable

__all__ = ["fleet_router"]

#: Largest command body accepted (a transfer summary is the longest field).
MAX_BODY_BYTES = 8192
_PUBLIC = ("hangup", "transfer", "say")


def fleet_router(fleet: Fleet, token: str) -> APIRouter:
    router = APIRouter(prefix="/fleet", include_in_schema=False)
    expected = f"Bearer {token}".encode()

    def authorised(request: Request) -> bool:
        return hmac.compare_digest(request.headers.get("authorization", "").encode(), expected)

    @router.get("/calls")
    async def calls(request: Request) -> JSONResponse:
        if not authorised(request):
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        try:
            return JSONResponse({"node": fleet.node_id, "calls": await fleet.calls()})
        except FleetUnavailable:
            return JSONResponse({"error": "fleet unavailable"}, status_code=503)

    @router.post("/calls/{provider}/{call_id}/{command}")
    async def command(request: Request, provider: str, call_id: str, command: str) -> JSONResponse:
        if not authorised(request):
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        if command not in _PUBLIC:
            return JSONResponse({"error": f"unknown command (use {', '.join(_PUBLIC)})"}, status_code=404)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            fields: Any = json.loads(body) if body else {}
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        if not isinstance(fields, dict):
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        try:
            result = await fleet.command(provider, call_id, {**fields, "command": command})
        except FleetUnavailable:
            return JSONResponse({"error": "fleet unavailable"}, status_code=503)
        status = int(result.pop("status", 200 if result.get("ok") else 502))
        return JSONResponse(result, status_code=status)

    return router
