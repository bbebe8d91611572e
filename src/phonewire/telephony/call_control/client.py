"""Sends a described call-control request: bounded, one retry, never on the audio path.

Shares the hang-up's ``httpx.AsyncClient`` (one per event loop, ``telephony.hangup``). Each
attempt is bounded by ``timeout``; a 429, a 5xx or a network error earns one retry after a
short pause. The callers run this in the function-call task or a transport-owned task, never
in a processor's frame path. Only the path is logged: queries could carry tokens.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from phonewire.telephony.call_control.base import ControlOutcome, ControlRequest, ControlResponse
from phonewire.telephony.hangup import RETRY_PAUSE_SECS, shared_http_client

__all__ = ["perform"]

logger = logging.getLogger("phonewire.call_control")


async def _attempt(request: ControlRequest, timeout: float) -> ControlResponse:
    try:
        response = await shared_http_client().request(
            request.method, request.url, headers=request.headers, data=request.form, json=request.json, timeout=timeout
        )
    except (httpx.HTTPError, OSError) as exc:
        logger.warning("- %s %s %s failed: %s", request.action, request.method, _path(request.url), type(exc).__name__)
        return ControlResponse(ControlOutcome.RETRY)
    outcome = request.interpret(response.status_code, response.content)
    logger.info(
        "= %s %s %s -> %d (%s)", request.action, request.method, _path(request.url), response.status_code, outcome.value
    )
    return ControlResponse.parse(outcome, response.status_code, response.content)


async def perform(request: ControlRequest, *, timeout: float = 5.0, retries: int = 1) -> ControlResponse:
    """Run the request; the last response (RETRY after the retries means "no answer")."""
    response = ControlResponse(ControlOutcome.FAILED)
    for attempt in range(retries + 1):
        response = await _attempt(request, timeout)
        if response.outcome is not ControlOutcome.RETRY or attempt == retries:
            break
        await asyncio.sleep(RETRY_PAUSE_SECS)
    return response


def _path(url: str) -> str:
    return url.split("?", 1)[0]
