"""The bot's own per-turn latency breakdown, fetched from a phonewire server's console API.

The simulator sees a call from the caller's side: when the bot started to be heard. Only the
bot knows where that time went (VAD, transcript, first token, first TTS byte, first packet
sent, provider ack). A ``phonewire serve --console`` server publishes each call's turns at
``/calls/api`` (docs/softphone.md); ``phonewire call --console-token`` reads them there after
the call and adds them to the report, so one report holds both sides.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

import httpx

__all__ = ["console_api_url", "fetch_bot_turns"]

#: How long we wait for the server to list the finished call (it ends the call after the
#: caller's side has seen it end).
FETCH_WINDOW_SECS = 3.0


def console_api_url(ws_url: str) -> str:
    """``ws://host:port/ws`` -> ``http://host:port/calls/api`` (wss -> https)."""
    parts = urllib.parse.urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urllib.parse.urlunsplit((scheme, parts.netloc, "/calls/api", "", ""))


async def fetch_bot_turns(
    ws_url: str, call_id: str, token: str, *, timeout: float = FETCH_WINDOW_SECS
) -> list[dict[str, Any]]:
    """The turns (``index``, ``stages`` in ms, ``response_ms``, ``heard_by``) the bot recorded
    for ``call_id``. Raises ``TimeoutError`` if the server does not list the ended call within
    ``timeout``, and httpx's errors for an unreachable server or refused credentials."""
    url = console_api_url(ws_url)
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=timeout) as http, asyncio.timeout(timeout):
        while True:
            response = await http.get(url, headers=headers)
            response.raise_for_status()
            snapshot = response.json()
            for view in snapshot.get("ended", []):
                if view.get("call_id") == call_id:
                    return list(view.get("turn_list", []))
            await asyncio.sleep(0.1)  # the server has not ended its side yet; it offers no event to us
