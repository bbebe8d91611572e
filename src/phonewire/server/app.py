"""create_app: a FastAPI app serving any bot on one auto-detecting media-stream route.

::

    async def bot(transport: FastAPIWebsocketTransport, call: CallInfo) -> None:
        task = PipelineTask(Pipeline([transport.input(), MyBot(), transport.output()]))
        await PipelineRunner(handle_sigint=False).run(task)

    app = create_app(bot)          # uvicorn module:app

Each call: check upgrade signatures, refuse politely beyond ``max_pending_handshakes``
(in total and per client address; close 1013), read the provider's handshake under a
deadline, check the stream token, only then take one of ``max_calls`` (close 1013 when
none is free), build the transport with the call's own media format, run the bot, log a
one-line summary.

Run it under uvicorn with ``uvicorn_config_kwargs(config)`` (``phonewire.server.web_server``):
header deadline and size limit, ``ws_max_size`` = ``max_message_bytes``, a connection bound
and redacted access logs. ``/docs``, ``/redoc`` and ``/openapi.json`` are off unless
``ServerConfig.api_docs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse

from phonewire import logsafe
from phonewire.exceptions import ConfigurationError, HandshakeError
from phonewire.serializers.base import CallInfo
from phonewire.server import stream_policy
from phonewire.server.call_control_routes import attach_live_call, call_control_router
from phonewire.server.config import ServerConfig
from phonewire.server.guard import STORE_UNAVAILABLE, HandshakePools, acheck_stream_token, classify_upgrade
from phonewire.server.lifecycle import CallRegistry
from phonewire.server.live_calls import LiveCalls
from phonewire.server.metrics import Metrics
from phonewire.server.observability import install_observability
from phonewire.server.pages import install_pages
from phonewire.server.prewarm import PrewarmRegistry, discard, handing
from phonewire.server.web_server import install_uvicorn_log_filter
from phonewire.server.webhooks import webhook_router
from phonewire.telephony.handshake import Handshake, read_handshake
from phonewire.telephony.providers import get_provider, providers
from phonewire.telephony.tokens import StreamTokenSigner
from phonewire.transports.asgi import RawWebSocketMiddleware
from phonewire.transports.fastapi import FastAPIWebsocketTransport
from phonewire.transports.params import FastAPIWebsocketParams

__all__ = [
    "DEFAULT_GC_COLLECT_SECS",
    "DEFAULT_GC_THRESHOLDS",
    "Bot",
    "collect_every",
    "create_app",
    "gc_collect_secs_from_env",
    "gc_thresholds_from_env",
    "tune_gc",
]

logger = logging.getLogger("phonewire.server")

Bot = Callable[[FastAPIWebsocketTransport, CallInfo], Awaitable[None]]

#: ``gc.set_threshold`` for a serving process (``PHONEWIRE_GC_THRESHOLDS``, ``phonewire serve
#: --gc-thresholds``; "python" keeps Python's 700,10,10). Python counts a young collection due
#: when allocations minus deallocations of tracked objects pass ``gen0``; a call's per-packet
#: and per-reply objects (frames in the play queue, futures, events) come and go, so at 700 the
#: count crosses the threshold ~5 times a second at 100 calls and every crossing promotes
#: whatever is alive at that instant (the reply being queued) towards gen 2, whose full
#: collections walk every call's pipeline. At 20 000 mostly real growth (new calls, cyclic
#: garbage) reaches it. The young generation then holds more between collections: +0.08 MB
#: per call under heavy call turnover (+0.16 MB at 50 000). Measured in docs/benchmarks.md
#: (speech to speech) and docs/configuration.md. Full collections then come from
#: ``GC_COLLECT_SECS`` instead, at a fixed rate that bounds how long an ended call's cycles
#: stay in memory.
DEFAULT_GC_THRESHOLDS = (20_000, 20, 10)
GC_THRESHOLDS_ENV = "PHONEWIRE_GC_THRESHOLDS"
#: A full collection every this many seconds while serving (``PHONEWIRE_GC_COLLECT_SECS``,
#: ``--gc-collect-secs``; 0: none, Python's thresholds alone decide). Only with tuned thresholds.
DEFAULT_GC_COLLECT_SECS = 60.0
GC_COLLECT_ENV = "PHONEWIRE_GC_COLLECT_SECS"


def gc_thresholds_from_env() -> tuple[int, int, int] | None:
    """``PHONEWIRE_GC_THRESHOLDS``: "gen0,gen1,gen2", or "python" (None: leave Python's)."""
    value = (os.environ.get(GC_THRESHOLDS_ENV) or "").strip()
    if not value:
        return DEFAULT_GC_THRESHOLDS
    if value == "python":
        return None
    try:
        parts = tuple(int(v) for v in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or parts[0] < 1 or min(parts) < 0:
        raise ConfigurationError(f"{GC_THRESHOLDS_ENV}={value!r}: expected gen0,gen1,gen2 (e.g. 20000,20,10) or python")
    return parts[0], parts[1], parts[2]


def gc_collect_secs_from_env() -> float:
    value = (os.environ.get(GC_COLLECT_ENV) or "").strip()
    try:
        secs = float(value) if value else DEFAULT_GC_COLLECT_SECS
    except ValueError:
        secs = -1.0
    if not secs >= 0 or secs == float("inf"):
        raise ConfigurationError(f"{GC_COLLECT_ENV}={value!r}: expected seconds (0: no timed collections)")
    return secs


def tune_gc(thresholds: tuple[int, int, int] | None) -> tuple[int, int, int]:
    """A server process's collector, once everything is imported and built: one full collection,
    then ``gc.freeze()`` (what is alive now lives as long as the process: modules, the app, the
    shared models; later full collections skip it), then the thresholds. Returns the previous
    thresholds."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    if thresholds is not None:
        gc.set_threshold(*thresholds)
    return previous[0], previous[1], previous[2]


async def collect_every(secs: float) -> None:
    """A full collection every ``secs`` (an owned task of the lifespan): the ended calls'
    cycles, which tuned thresholds would otherwise leave in the old generations for hours."""
    while True:
        await asyncio.sleep(secs)
        gc.collect()


def create_app(bot: Bot, config: ServerConfig | None = None) -> FastAPI:
    config, fleet = stream_policy.prepare(config or ServerConfig())  # server/stream_policy.py
    if config.require_stream_token and not config.stream_secret:
        raise ConfigurationError("require_stream_token=True needs a stream secret (PHONEWIRE_STREAM_SECRET)")
    _check_transport_params(config)
    _check_serializer_kwargs(config)
    replay = fleet.replay_store if fleet is not None else None  # fleet-wide single use (phonewire.fleet)
    signer = StreamTokenSigner(config.stream_secret, replay_store=replay) if config.stream_secret else None
    if config.vad == "silero":
        from phonewire.audio.vad import SileroModel

        SileroModel.shared()  # load once, now, instead of on the first call's audio path
    if signer is None:
        logger.warning("= no PHONEWIRE_STREAM_SECRET: streams are not authenticated and auto hang-up is off")
    logsafe.install()  # peer values in phonewire's log lines cannot forge lines (issue 11 #7)
    install_uvicorn_log_filter()  # tokens and numbers in uvicorn's request lines are redacted (#9)
    docs = config.api_docs
    app = FastAPI(
        title="phonewire",
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        # No trailing-slash redirect: Starlette builds its Location from the Host header,
        # which no check here has seen (``/webhooks/twilio/`` with ``Host: evil.example``).
        redirect_slashes=False,
    )
    app.add_middleware(RawWebSocketMiddleware)  # the transport's direct line to uvicorn (transports/asgi.py)
    metrics = Metrics()
    app.state.metrics = metrics
    app.state.config = config
    app.state.handshake_pools = HandshakePools(config)  # signed upgrades wait apart (guard.py)
    # /metrics, /readyz, /livez, the SIGTERM drain and the per-call hooks (server/observability.py).
    calls, drain = install_observability(app, config, metrics)
    install_pages(app, config, signer, calls)  # /softphone and /calls, when enabled (server/pages/)
    app.include_router(webhook_router(config, signer))
    # Started by verified webhooks, handed to the call's bot (server/prewarm.py).
    app.state.prewarm = (
        PrewarmRegistry(config.prewarm, ttl_secs=config.prewarm_ttl_secs, max_entries=config.prewarm_max)
        if config.prewarm
        else None
    )
    app.state.live_calls = LiveCalls()  # verified live calls, for the call-control callbacks
    app.include_router(call_control_router(config, signer, app.state.live_calls))
    stream_policy.install(app, config, fleet)  # the fleet's API and lifespan, recording

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "active_calls": metrics.active, "max_calls": config.max_calls})

    @app.websocket(config.ws_path)
    async def media_stream(websocket: WebSocket) -> None:
        await _serve_call(websocket, bot, config, signer, metrics)

    if config.freeze_gc:
        thresholds, every = gc_thresholds_from_env(), gc_collect_secs_from_env()  # bad values fail here
        gc.collect()
        gc.freeze()
        _tune_gc_in_lifespan(app, thresholds, every if thresholds is not None else 0.0)
    return app


def _tune_gc_in_lifespan(app: FastAPI, thresholds: tuple[int, int, int] | None, every: float) -> None:
    """At start-up (the server, its protocol modules and the lifespans above are up by then):
    ``tune_gc`` and the timed full collections; at shutdown the timer stops and the previous
    thresholds come back (tests build many apps in one process)."""
    previous_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with previous_lifespan(a) as state:
            before = tune_gc(thresholds)
            timer = asyncio.get_running_loop().create_task(collect_every(every), name="gc") if every else None
            try:
                yield state
            finally:
                if timer is not None:
                    timer.cancel()
                    await asyncio.gather(timer, return_exceptions=True)
                gc.set_threshold(*before)

    app.router.lifespan_context = lifespan


async def _serve_call(
    websocket: WebSocket, bot: Bot, config: ServerConfig, signer: StreamTokenSigner | None, metrics: Metrics
) -> None:
    refusal, signed = classify_upgrade(config, websocket.scope, websocket.headers)
    if refusal is not None:
        metrics.rejected += 1
        logger.warning("! refusing a stream: %s", refusal)
        await websocket.close(1008)
        return
    # Until its handshake is done a socket is only "pending": it holds no max_calls slot, and
    # pending sockets are capped on their own, in total and per client address (issue 11 #8).
    client = websocket.client.host if websocket.client else "-"
    state = websocket.scope["app"].state
    if state.drain.draining:  # a deploy in progress: the provider may place the call elsewhere
        metrics.refuse("draining")
        logger.info("! refusing a stream: draining (SIGTERM); closing with 1013")
        await websocket.accept()
        await _close(websocket, 1013, "server restarting, try again later")
        return
    # An upgrade with a valid provider signature waits in a pool of its own: unsigned sockets,
    # which anyone can open, cannot crowd out the provider's calls.
    pools: HandshakePools = websocket.scope["app"].state.handshake_pools
    busy = pools.refusal(metrics, client, signed=signed)
    if busy is not None:
        metrics.refuse("pending_handshakes")
        logger.warning("! refusing a stream: %s; closing with 1013", busy)
        await websocket.accept()
        await _close(websocket, 1013, "server busy, try again later")
        return
    pools.started(metrics, client, signed=signed)
    try:
        await websocket.accept()
        call = await _identify(websocket, config, signer, metrics)
    finally:
        pools.ended(metrics, client, signed=signed)
    if call is None:
        return
    if call[2] is not None:  # a reconnect for a call held after its socket dropped
        call[0].log.info("= a reconnect for this held call: resuming it on the new socket")
        await stream_policy.serve_resumed(call[0], websocket, call[2])
        return
    # Duplicate streams, then the fleet's limits and registry (server/stream_policy.py).
    admission, refused = await stream_policy.admit(state, config, call[0], call[1])
    if refused is not None:
        metrics.refuse("duplicate" if refused.startswith("duplicate") else "fleet")
        code = 1008 if refused.startswith("duplicate") else 1013
        call[0].log.warning("! refusing the call: %s; closing with %d", refused, code)
        await _close(websocket, code, "duplicate stream" if code == 1008 else "server busy, try again later")
        return
    if metrics.active >= config.max_calls:
        await stream_policy.release(state, admission)
        metrics.refuse("max_calls")
        logger.warning("! refusing a call: %d calls already (max_calls); closing with 1013", metrics.active)
        await _close(websocket, 1013, "server busy, try again later")
        return
    metrics.active += 1
    registry = getattr(websocket.scope.get("app"), "state", None)
    registry = getattr(registry, "prewarm", None)
    # Only a stream proven to be this call (its token checked) gets the call's prewarm.
    allowed = call[0].verified or not config.tokens_required
    warm = registry.take(call[1].call_id) if registry is not None and allowed else None
    token = handing(warm)
    try:
        await _run_bot(bot, call[0], call[1], state.calls)
    finally:
        metrics.active -= 1
        await stream_policy.release(state, admission)
        handing(None)
        del token
        if warm is not None:
            await discard(warm)  # closed if the bot did not (a session is closed twice harmlessly)


async def _identify(
    websocket: WebSocket, config: ServerConfig, signer: StreamTokenSigner | None, metrics: Metrics
) -> tuple[FastAPIWebsocketTransport, CallInfo, Handshake | None] | None:
    """Handshake and stream token: the call's transport, or None when the stream was refused.
    A reconnect for a call held after its socket dropped gets that call's transport and its
    own handshake (third item; None for a new call)."""
    try:
        handshake = await read_handshake(
            websocket,
            providers=config.providers,
            timeout=config.handshake_timeout,
            serializer_factory=lambda info: _serializer(info, config),
        )
    except HandshakeError as exc:
        metrics.rejected += 1
        logger.warning("! stream refused: %s (close %d)", exc, exc.close_code)
        await _close(websocket, exc.close_code, str(exc))
        return None
    except Exception:
        metrics.internal_errors += 1
        logger.exception("! handshake failed unexpectedly (bug); closing (1011)")
        await _close(websocket, 1011, "internal error")
        return None
    info = handshake.info
    verified, refusal = await acheck_stream_token(signer, info, required=config.tokens_required)
    state = websocket.scope["app"].state
    held = stream_policy.held_call(state, info, verified, refusal)
    if held is not None:
        return held, info, handshake
    if await stream_policy.replay_is_reconnect(state, config, info, refusal):
        verified, refusal = True, None  # the token was valid and spent on this same live call
    if refusal is not None:
        metrics.rejected += 1
        # A token we could not check (the fleet's store is down) is not a bad token: 1013, so the
        # provider or gateway retries, perhaps on another node; a bad one is 1008.
        unchecked = refusal.startswith(STORE_UNAVAILABLE)
        code, why = (1013, "try again later") if unchecked else (1008, "stream not authorised")
        logger.warning("[%s %s] ! %s: closing (%d), no bot, no hang-up", info.provider, info.call_id, refusal, code)
        await _close(websocket, code, why)
        return None
    defaults = {"audio_in_enabled": True, "audio_out_enabled": True, "vad_analyzer": make_vad(config.vad)}
    params = FastAPIWebsocketParams(**{**defaults, **config.transport_params, "serializer": handshake.serializer})
    transport = FastAPIWebsocketTransport(websocket, params, handshake=handshake)
    transport.verified = verified
    transport.hangup_allowed = verified
    transport.resume_window_secs = stream_policy.resume_window(config, info, verified)
    attach_live_call(transport, websocket, config)
    return transport, info, None


async def _run_bot(bot: Bot, transport: FastAPIWebsocketTransport, info: CallInfo, calls: CallRegistry) -> None:
    started = time.monotonic()
    transport.log.info("= call started (%s %d Hz)", info.media_format.encoding, info.media_format.sample_rate)
    live = transport.live_calls
    if live is not None and transport.verified and info.call_id:
        live.add(info.provider, info.call_id, transport)
    call = calls.begin(transport, info)  # metrics, tracing, the drain's view (server/lifecycle.py)
    try:
        await bot(transport, info)
    except Exception:
        call.bot_error = True
        transport.log.exception("! bot raised; the call is closed")
    finally:
        if live is not None and info.call_id:
            live.remove(info.provider, info.call_id, transport)
        await transport.close(1000, "bot finished")
        transport.release_socket()  # a resumed socket's handler (stream_policy.serve_resumed) returns
        calls.end(call)
        s = transport.stats
        transport.log.info(
            "= call ended after %.1fs: in %.1fs out %.1fs, %d protocol errors, %d underruns, hang-up %s (%s), %s",
            time.monotonic() - started,
            s.audio_in_ms / 1000,
            s.audio_out_ms / 1000,
            s.protocol_error_count,
            s.underruns,
            s.hangup or "none",
            s.close_reason or "-",
            call.outcome,
        )


def _serializer(info: CallInfo, config: ServerConfig) -> Any:
    # answer_*: the codec our webhook answer asked for (Telnyx's bidirectionalCodec/SamplingRate);
    # a provider whose codec the stream fixes ignores it (Provider.answer_defaults).
    return get_provider(info.provider).build_serializer(
        info,
        answer_codec=config.telnyx_codec,
        answer_rate=config.telnyx_sampling_rate,
        **config.serializer_kwargs.get(info.provider, {}),
    )


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):  # already gone
        await websocket.close(code, reason[:120])


def _check_serializer_kwargs(config: ServerConfig) -> None:
    """A wrong serializer_kwargs entry must fail at start-up, not as a 1011 on every call:
    build each configured provider's serializer once, from a sample handshake."""
    known = {p.name: p for p in providers()}
    for provider in config.serializer_kwargs:
        if provider not in known:
            raise ConfigurationError(f"ServerConfig.serializer_kwargs: unknown provider {provider!r}")
        media = known[provider].default_format
        info = CallInfo(provider=provider, call_id=None, stream_id="startup-check", media_format=media)
        try:
            _serializer(info, config)
        except (TypeError, ConfigurationError) as exc:  # messages name arguments, never values
            raise ConfigurationError(f"ServerConfig.serializer_kwargs[{provider!r}]: {exc}") from None
        except Exception as exc:
            raise ConfigurationError(
                f"ServerConfig.serializer_kwargs[{provider!r}]: the serializer cannot be built ({type(exc).__name__})"
            ) from None


def _check_transport_params(config: ServerConfig) -> None:
    """A typo in transport_params must fail at start-up, not on every call."""
    try:
        FastAPIWebsocketParams(**config.transport_params)
    except TypeError as exc:
        raise ConfigurationError(f"ServerConfig.transport_params: {exc}") from None


def make_vad(kind: str | None) -> Any:
    """A fresh analyzer for one call (the Silero model itself is shared by the process)."""
    if kind is None:
        return None
    from phonewire.audio.vad import EnergyVADAnalyzer, SileroVADAnalyzer

    if kind == "silero":
        return SileroVADAnalyzer()
    if kind == "energy":
        return EnergyVADAnalyzer()
    raise ValueError(f"unknown vad {kind!r}: use 'silero', 'energy' or None")


def new_stream_secret() -> str:
    """A fresh random secret (the demo uses one per run)."""
    return secrets.token_urlsafe(32)
