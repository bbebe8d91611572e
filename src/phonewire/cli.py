"""The ``phonewire`` command: ``serve`` a bot, ``call`` a bot as a provider would, ``demo`` both.

``main(argv)`` is the entry point; every sub-command is a small function so the CLI stays a
thin wrapper over the library (tests drive ``main`` directly).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
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


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from phonewire.exceptions import ConfigurationError
    from phonewire.server import ServerConfig
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
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    uvicorn.run(
        "phonewire.cli:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        log_level=args.log_level,
        timeout_graceful_shutdown=5,
        # Header deadline and size, ws_max_size, connection bound, redacted access log (issue 11 #8, #9).
        **uvicorn_config_kwargs(ServerConfig(**config_kwargs_from_env())),
    )
    return 0


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

    if not logging.getLogger().handlers:  # a --workers process: the parent's basicConfig is not here
        logging.basicConfig(level=os.environ.get(ENV["log_level"], "info").upper(), format=LOG_FORMAT)
    config = ServerConfig(**config_kwargs_from_env())
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
