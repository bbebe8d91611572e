"""Which streams may become calls beyond the token check: duplicates, the fleet, recording.

Why a module of its own: ``app.py`` is the per-call flow and should read as one; the rules
added for production - a second stream for a live call (``duplicate_stream_policy``), the
fleet's admission and leases (``phonewire.fleet``), recording every call - each need a few
lines at fixed points of that flow, which live here.

Duplicate streams. A call id is only trusted once a stream token verified it, so the policy
applies to verified streams: a stream whose token is valid but *already used* is refused as a
replay, unless the policy is "replace" and the call is live right now (here or, with a fleet,
on another node) - a provider reconnecting presents the token it was given once. "refuse"
closes the new stream (1008); "replace" detaches the old one (closed 1000, no hang-up, its
pipeline ends) and the new stream gets a fresh bot. The old stream's node is told over the
fleet's command channel when it is another node.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from phonewire.exceptions import ConfigurationError
from phonewire.server.config import ServerConfig
from phonewire.telephony.tokens import STREAM_TOKEN_PARAMETER

__all__ = [
    "POLICIES",
    "admit",
    "held_call",
    "install",
    "prepare",
    "release",
    "replay_is_reconnect",
    "resume_window",
    "serve_resumed",
]

logger = logging.getLogger("phonewire.server")

POLICIES = ("refuse", "replace")
REPLAYED = "stream token rejected: replayed"
EXPIRED = "stream token rejected: expired"


def prepare(config: ServerConfig) -> tuple[ServerConfig, Any]:
    """Check the policy; build the fleet (None without one). With a fleet, the webhook request
    memory defaults to the fleet's Redis store (a copy of ``config`` says so)."""
    if config.duplicate_stream_policy not in POLICIES:
        raise ConfigurationError(f"duplicate_stream_policy={config.duplicate_stream_policy!r}: use {POLICIES}")
    if config.fleet is None:
        return config, None
    try:
        from phonewire.fleet import Fleet
    except ImportError as exc:
        raise ConfigurationError(f"ServerConfig.fleet needs: pip install 'phonewire[redis]' ({exc})") from None
    fleet = Fleet(config.fleet, duplicate_policy=config.duplicate_stream_policy)
    if config.webhook_request_store is None:
        config = dataclasses.replace(config, webhook_request_store=fleet.request_store)
    return config, fleet


def install(app: FastAPI, config: ServerConfig, fleet: Any) -> None:
    """The fleet's API and lifespan (start: subscribe + heartbeat; stop: release, close) and
    the recording hook, on ``app``."""
    app.state.fleet = fleet
    recording = config.recording
    if recording is not None:
        from phonewire.recording import RecordingHook

        app.state.calls.hooks.append(RecordingHook(recording))
    if fleet is None and recording is None:
        return
    if fleet is not None:
        fleet.live = app.state.live_calls
        if config.fleet.api_token:
            from phonewire.fleet.api import fleet_router

            app.include_router(fleet_router(fleet, config.fleet.api_token))
    previous = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        if fleet is not None:
            await fleet.start()
        try:
            async with previous(a) as state:
                yield state
        finally:
            if fleet is not None:
                await fleet.stop()
            if recording is not None:
                await asyncio.to_thread(recording.writer.stop)

    app.router.lifespan_context = lifespan


# --- resumed streams: a reconnect attached to the held call ---------------------------------


def resume_window(config: ServerConfig, info: Any, verified: bool) -> float:
    """Seconds a call whose socket drops is held for a reconnect: only verified calls (the
    reconnect must prove it is the same call) of the providers that reconnect."""
    if not verified or not info.call_id or info.provider not in config.resume_providers:
        return 0.0
    return max(0.0, config.resume_window_secs)


def held_call(state: Any, info: Any, verified: bool, refusal: str | None) -> Any:
    """The call this stream reconnects to - held by this process after its socket dropped
    (``transport.parked``) - or None. The reconnect proves itself with a fresh valid token for
    the call, or with the very token the call was admitted with (spent by then, maybe expired:
    its MAC was checked for this call id before either verdict, and it must be the held call's
    own, compared in constant time)."""
    live = getattr(state, "live_calls", None)
    if live is None or not info.call_id:
        return None
    held = live.get(info.provider, info.call_id)
    if held is None or getattr(held, "parked", None) is None:
        return None
    if verified:
        return held
    if refusal not in (REPLAYED, EXPIRED):
        return None
    token = info.custom_parameters.get(STREAM_TOKEN_PARAMETER)
    first = held.call_info.custom_parameters.get(STREAM_TOKEN_PARAMETER) if held.call_info else None
    if isinstance(token, str) and isinstance(first, str) and hmac.compare_digest(token.encode(), first.encode()):
        return held
    return None


async def serve_resumed(held: Any, websocket: Any, handshake: Any) -> None:
    """Hand the reconnect's socket to the held call and keep it open (this handler's life is
    the socket's) until the call ends or the socket is swapped out again."""
    released = await held.resume(websocket, handshake)
    if released is None:
        with contextlib.suppress(Exception):
            await websocket.close(1008, "cannot resume this call")
        return
    await released.wait()  # set by the call's end (cleanup, or _run_bot's finally) or a new drop


async def replay_is_reconnect(state: Any, config: ServerConfig, info: Any, refusal: str | None) -> bool:
    """A replayed (otherwise valid) token for a call that is live, under "replace": the
    provider reconnecting. Everything else stays refused."""
    if refusal != REPLAYED or config.duplicate_stream_policy != "replace" or not info.call_id:
        return False
    live = getattr(state, "live_calls", None)
    if live is not None and live.get(info.provider, info.call_id) is not None:
        return True
    fleet = getattr(state, "fleet", None)
    if fleet is None:
        return False
    try:
        return any(c.get("key") == f"{info.provider}:{info.call_id}" for c in await fleet.calls())
    except Exception:
        return False  # fail closed


async def admit(state: Any, config: ServerConfig, transport: Any, info: Any) -> tuple[Any, str | None]:
    """(fleet admission or None, refusal or None). Applies the duplicate policy to this
    process's live calls, then the fleet's limits and registry."""
    live = getattr(state, "live_calls", None)
    old = live.get(info.provider, info.call_id) if live is not None and transport.verified else None
    if old is not None:
        if config.duplicate_stream_policy == "refuse":
            return None, "duplicate stream for a live call (duplicate_stream_policy=refuse)"
        transport.log.info("= a new stream for this live call: replacing the old one")
        await old.detach("replaced by a new stream")
    fleet = getattr(state, "fleet", None)
    if fleet is None:
        return None, None
    from phonewire.fleet import FleetUnavailable

    try:
        admission = await fleet.admit(info, verified=transport.verified)
    except FleetUnavailable as exc:
        return None, f"fleet unavailable ({exc}): new calls refused"
    if admission.refusal == "duplicate":
        return None, "duplicate stream for a call live on the fleet (duplicate_stream_policy=refuse)"
    if admission.refusal is not None:
        return None, f"fleet limit {admission.refusal}"
    if admission.previous is not None:
        try:
            await fleet.takeover(admission)
        except Exception as exc:  # the old node will lose its lease anyway
            transport.log.warning("- could not tell the old stream's node: %s", type(exc).__name__)
    return admission, None


async def release(state: Any, admission: Any) -> None:
    fleet = getattr(state, "fleet", None)
    if fleet is None or admission is None:
        return
    try:
        await fleet.release(admission)
    except Exception as exc:  # Redis down: the lease expires within lease_ttl_secs
        logger.warning("- fleet lease not released (%s); it expires by itself", type(exc).__name__)
