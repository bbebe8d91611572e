"""The ``phonewire`` command: ``serve`` a bot, ``call`` a bot as a provider would, ``demo`` both.

``main(argv)`` is the entry point; every sub-command is a small function so the CLI stays a
thin wrapper over the library (tests drive ``main`` directly).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]

# Env names that carry ``phonewire serve`` options into worker processes.
ENV = {
    "vad": "PHONEWIRE_VAD",
    "public_host": "PHONEWIRE_PUBLIC_HOST",
    "stream_scheme": "PHONEWIRE_STREAM_SCHEME",
    "trust_forwarded": "PHONEWIRE_TRUST_FORWARDED",
    "max_calls": "PHONEWIRE_MAX_CALLS",
    "providers": "PHONEWIRE_PROVIDERS",
    "handshake_timeout": "PHONEWIRE_HANDSHAKE_TIMEOUT",
    "twilio_api_base_url": "PHONEWIRE_TWILIO_API_BASE_URL",
    "max_pending_handshakes": "PHONEWIRE_MAX_PENDING_HANDSHAKES",
    "max_pending_per_client": "PHONEWIRE_MAX_PENDING_PER_CLIENT",
    "header_timeout": "PHONEWIRE_HEADER_TIMEOUT",
    "max_header_bytes": "PHONEWIRE_MAX_HEADER_BYTES",
    "max_connections": "PHONEWIRE_MAX_CONNECTIONS",
    "api_docs": "PHONEWIRE_API_DOCS",
    "log_level": "PHONEWIRE_LOG_LEVEL",
    "bot": "PHONEWIRE_BOT",
    # Read by ServerConfig itself (server/config.py), so create_app under any server honours them.
    "log_format": "PHONEWIRE_LOG_FORMAT",
    "drain_timeout": "PHONEWIRE_DRAIN_TIMEOUT",
    "drain_goodbye": "PHONEWIRE_DRAIN_GOODBYE",
    "drain_fallback": "PHONEWIRE_DRAIN_FALLBACK",
    "drain_fallback_url": "PHONEWIRE_DRAIN_FALLBACK_URL",
    "tracing": "PHONEWIRE_TRACING",
    "softphone": "PHONEWIRE_SOFTPHONE",
    "console": "PHONEWIRE_CONSOLE",
    # A fleet on Redis (phonewire.fleet reads these itself), recording, duplicate streams.
    "redis_url": "PHONEWIRE_REDIS_URL",
    "node_id": "PHONEWIRE_NODE_ID",
    "max_fleet_calls": "PHONEWIRE_MAX_FLEET_CALLS",
    "max_calls_per_number": "PHONEWIRE_MAX_CALLS_PER_NUMBER",
    "record_dir": "PHONEWIRE_RECORD_DIR",
    "duplicate_streams": "PHONEWIRE_DUPLICATE_STREAMS",
    "resume_window": "PHONEWIRE_RESUME_WINDOW",
    # Read by create_app (server/app.py: tune_gc at start-up).
    "gc_thresholds": "PHONEWIRE_GC_THRESHOLDS",
    "gc_collect_secs": "PHONEWIRE_GC_COLLECT_SECS",
}
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
#: ENV keys whose values are numbers, by the type ServerConfig wants.
_NUMBERS = {
    "max_calls": int,
    "handshake_timeout": float,
    "max_pending_handshakes": int,
    "max_pending_per_client": int,
    "header_timeout": float,
    "max_header_bytes": int,
    "max_connections": int,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    return int(args.func(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="phonewire", description="Phone calls to voice bots over WebSockets.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="serve a bot (default: the demo bot) with webhooks, tokens and limits")
    _serve_arguments(serve)
    serve.set_defaults(func=cmd_serve)
    call = sub.add_parser("call", help="call a bot server as a telephony provider would, and report")
    from phonewire.testing import cli_call

    cli_call.add_arguments(call)
    call.set_defaults(func=lambda a: asyncio.run(cli_call.run(a)))
    dial = sub.add_parser("dial", help="place an outbound call that streams to a phonewire server")
    from phonewire.telephony.call_control import dial_cli

    dial_cli.add_arguments(dial)
    dial.set_defaults(func=dial_cli.run)
    demo = sub.add_parser("demo", help="start the demo server, call it, print the report")
    demo.add_argument("--record", default=None, help="stereo WAV path (default recordings/demo-TIME.wav)")
    demo.add_argument("--json", action="store_true", help="print the report as JSON")
    demo.add_argument("--audio", default=None, help="the caller's first question, a WAV (default: a built-in one)")
    demo.add_argument(
        "--brain",
        choices=["auto", "rules", "llm"],
        default="auto",
        help="who answers: keyword rules, or an OpenAI-compatible LLM (auto: llm when OPENAI_API_KEY/_BASE_URL set)",
    )
    demo.add_argument("--progress", action="store_true", help="show the live progress line even without a TTY")
    demo.add_argument("--log-level", default="warning", help="server log level")
    demo.set_defaults(func=cmd_demo)
    return parser


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bot",
        default=None,
        help="your bot as module:function, an async function (transport, call); default: the demo bot",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 behind a proxy)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="processes; each holds its own calls and VAD model")
    p.add_argument(
        "--gc-thresholds",
        default=None,
        help="gen0,gen1,gen2 for gc.set_threshold once serving, or python (default 20000,20,10; configuration.md)",
    )
    p.add_argument(
        "--gc-collect-secs", type=float, default=None, help="a full collection every N s with tuned thresholds (60)"
    )
    p.add_argument("--vad", choices=["silero", "energy", "none"], default="silero")
    p.add_argument("--public-host", default=None, help="host[:port] providers reach (default: request Host)")
    p.add_argument("--stream-scheme", default="wss", choices=["wss", "ws"], help="scheme of the stream URL")
    p.add_argument("--trust-forwarded", action="store_true", help="honour X-Forwarded-Proto/Host (behind a proxy)")
    p.add_argument("--max-calls", type=int, default=200, help="calls per process; more are refused (1013)")
    p.add_argument("--providers", default=None, help="comma list to accept (default: detect all)")
    p.add_argument("--handshake-timeout", type=float, default=10.0)
    p.add_argument("--max-pending-handshakes", type=int, default=None, help="streams not yet identified (64)")
    p.add_argument("--max-pending-per-client", type=int, default=None, help="the same per client address (16)")
    p.add_argument("--header-timeout", type=float, default=None, help="seconds to send request headers (10)")
    p.add_argument("--max-header-bytes", type=int, default=None, help="largest request head (16384)")
    p.add_argument("--max-connections", type=int, default=None, help="HTTP+WebSocket connections (derived)")
    p.add_argument("--api-docs", action="store_true", help="serve /docs, /redoc and /openapi.json")
    p.add_argument("--twilio-api-base-url", default=None, help="Twilio REST root (a local fake in tests)")
    p.add_argument("--log-level", default="info")
    p.add_argument("--log-format", choices=["text", "json"], default=None, help="log lines: readable or JSON (text)")
    p.add_argument("--drain-timeout", type=float, default=None, help="SIGTERM: seconds calls get to end (20)")
    p.add_argument("--drain-goodbye", default=None, help="SIGTERM: said to calls still up at the deadline")
    p.add_argument(
        "--drain-fallback", choices=["hangup", "redirect", "reject"], default=None, help="webhooks while draining"
    )
    p.add_argument("--drain-fallback-url", default=None, help="where --drain-fallback redirect sends new calls")
    p.add_argument("--tracing", action="store_true", help="OpenTelemetry spans (OTEL_* env; phonewire[tracing])")
    p.add_argument("--softphone", action="store_true", help="serve the browser softphone at /softphone")
    p.add_argument("--console", action="store_true", help="serve the live call console at /calls")
    p.add_argument("--redis-url", default=None, help="join a fleet on this Redis (docs/deployment.md)")
    p.add_argument("--node-id", default=None, help="fleet name of this node (default: host-pid-random)")
    p.add_argument("--max-fleet-calls", type=int, default=None, help="calls across the whole fleet (1013 beyond)")
    p.add_argument("--max-calls-per-number", type=int, default=None, help="calls at once per called number, fleet-wide")
    p.add_argument("--record-dir", default=None, help="record every call here: stereo WAV + JSON sidecar")
    p.add_argument(
        "--duplicate-streams", choices=["refuse", "replace"], default=None, help="a 2nd stream for a live call (refuse)"
    )
    p.add_argument(
        "--resume-window", type=float, default=None, help="seconds a dropped raw-PCM/Vonage call waits to resume (10)"
    )


def cmd_serve(args: argparse.Namespace) -> int:
    # Before prometheus_client is imported (by phonewire.server): it picks its multiprocess
    # mode at import, and the workers inherit the variable.
    metrics_dir = _metrics_dir()
    try:
        return _serve(args)
    finally:
        _clean_metrics_dir(*metrics_dir)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from phonewire.exceptions import ConfigurationError
    from phonewire.server import ServerConfig
    from phonewire.server.json_logs import configure_logging, uvicorn_log_config
    from phonewire.server.web_server import uvicorn_config_kwargs

    if args.bot:
        try:
            load_bot(args.bot)  # fail now, with a message, not in every worker
        except ConfigurationError as exc:
            sys.stderr.write(f"phonewire serve: {exc}\n")
            return 2
    for key, env in ENV.items():
        value = getattr(args, key)
        if value not in (None, False):
            os.environ[env] = str(value)
    from phonewire.server.pages import page_keys

    for line in page_keys(args.host, args.port, args.workers):  # keys made now reach every worker
        sys.stderr.write(line + "\n")
    log_format = args.log_format or os.environ.get(ENV["log_format"]) or "text"
    configure_logging(args.log_level, log_format)
    logs: dict[str, Any] = {"log_config": uvicorn_log_config(log_format)} if log_format == "json" else {}
    # uvicorn re-raises the SIGTERM it shut down for; ending by SystemExit instead of by the
    # signal lets cmd_serve remove the metrics directory.
    signal.signal(signal.SIGTERM, _exit_143)
    uvicorn.run(
        "phonewire.cli:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        log_level=args.log_level,
        # The SIGTERM drain (server/drain.py) runs before uvicorn's shutdown and hands it a
        # process with no calls left, so uvicorn's own grace only covers Ctrl+C and stragglers.
        timeout_graceful_shutdown=5,
        **logs,
        # Header deadline and size, ws_max_size, connection bound, redacted access log (issue 11 #8, #9).
        **uvicorn_config_kwargs(ServerConfig(**config_kwargs_from_env())),
    )
    return 0


def _exit_143(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signal.SIGTERM)


def _metrics_dir() -> tuple[str, bool]:
    """(directory, ours): PROMETHEUS_MULTIPROC_DIR for this run, emptied of old values; a
    fresh temporary one unless the operator chose one."""
    import tempfile

    chosen = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if chosen:
        os.makedirs(chosen, exist_ok=True)
        _clean_metrics_dir(chosen, False)
        return chosen, False
    path = tempfile.mkdtemp(prefix="phonewire-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path, True


def _clean_metrics_dir(path: str, ours: bool) -> None:
    import glob
    import shutil

    if ours:
        shutil.rmtree(path, ignore_errors=True)
        return
    for name in glob.glob(os.path.join(path, "*.db")):
        with contextlib.suppress(OSError):
            os.remove(name)


def config_kwargs_from_env() -> dict[str, Any]:
    """ServerConfig keyword arguments from PHONEWIRE_* variables (so every worker builds the same)."""
    env = os.environ.get
    vad = env(ENV["vad"], "silero")
    kwargs: dict[str, Any] = {"vad": None if vad == "none" else vad}
    if env(ENV["stream_scheme"]):
        kwargs["stream_scheme"] = env(ENV["stream_scheme"])
    if env(ENV["trust_forwarded"]):
        kwargs["trust_forwarded"] = True
    if env(ENV["api_docs"]):
        kwargs["api_docs"] = True
    for key, kind in _NUMBERS.items():
        if env(ENV[key]):
            kwargs[key] = kind(env(ENV[key]) or 0)
    if env(ENV["providers"]):
        kwargs["providers"] = (env(ENV["providers"]) or "").split(",")
    if env(ENV["twilio_api_base_url"]):
        kwargs["serializer_kwargs"] = {"twilio": {"base_url": env(ENV["twilio_api_base_url"])}}
    if env(ENV["redis_url"]):  # PHONEWIRE_FLEET_API_TOKEN (env only: not in ps) turns on /fleet
        from phonewire.fleet import FleetConfig

        kwargs["fleet"] = FleetConfig()
    if env(ENV["record_dir"]):
        from phonewire.recording import RecordingConfig

        kwargs["recording"] = RecordingConfig(dir=env(ENV["record_dir"]))
    return kwargs


def load_bot(spec: str) -> Any:
    """``module:function`` -> the bot function, with errors that say what to fix."""
    import importlib

    from phonewire.exceptions import ConfigurationError

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"--bot {spec!r}: expected module:function, e.g. mybot:bot")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as uvicorn does for module:app
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"--bot {spec!r}: cannot import {module_name!r}: {exc}") from exc
    bot = getattr(module, attr, None)
    if bot is None or not callable(bot):
        raise ConfigurationError(f"--bot {spec!r}: {module_name} has no function {attr!r}")
    return bot


def app_from_env():
    """The app configured from PHONEWIRE_* variables (so every worker builds the same): the
    bot named by ``--bot`` (PHONEWIRE_BOT), else the demo bot."""
    from phonewire.demo.app import make_app
    from phonewire.server import ServerConfig, create_app
    from phonewire.server.json_logs import configure_logging

    if not logging.getLogger().handlers:  # a --workers process: the parent's basicConfig is not here
        configure_logging(os.environ.get(ENV["log_level"], "info"), os.environ.get(ENV["log_format"]) or "text")
    config = ServerConfig(**config_kwargs_from_env())
    if config.tracing and config.tracer_provider is None:
        from phonewire.server.tracing import configure_from_env

        config.tracer_provider = configure_from_env()
    spec = os.environ.get(ENV["bot"])
    app = create_app(load_bot(spec), config) if spec else make_app(config)
    # Everything loaded so far lives as long as the process: freezing it keeps full garbage
    # collections from walking ~300k module objects (measured 70 ms pauses at 100 calls,
    # heard by every call at once).
    gc.collect()
    gc.freeze()
    return app


def cmd_demo(args: argparse.Namespace) -> int:
    from phonewire.demo.run import run_demo

    return asyncio.run(run_demo(args))


if __name__ == "__main__":
    sys.exit(main())
