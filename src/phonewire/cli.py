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
    serve = sub.add_parser("serve", help="run the demo bot server (webhooks + one /ws route)")
    _serve_arguments(serve)
    serve.set_defaults(func=cmd_serve)
    call = sub.add_parser("call", help="call a bot server as a telephony provider would, and report")
    from phonewire.testing import cli_call

    cli_call.add_arguments(call)
    call.set_defaults(func=lambda a: asyncio.run(cli_call.run(a)))
    demo = sub.add_parser("demo", help="start the demo server, call it, print the report")
    demo.add_argument("--record", default=None, help="stereo WAV path (default recordings/demo-TIME.wav)")
    demo.add_argument("--json", action="store_true", help="print the report as JSON")
    demo.add_argument("--audio", default=None, help="caller speech WAV (default: a built-in recording)")
    demo.add_argument("--progress", action="store_true", help="show the live progress line even without a TTY")
    demo.add_argument("--log-level", default="warning", help="server log level")
    demo.set_defaults(func=cmd_demo)
    return parser


def _serve_arguments(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--twilio-api-base-url", default=None, help="Twilio REST root (a local fake in tests)")
    p.add_argument("--log-level", default="info")


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    for key, env in ENV.items():
        value = getattr(args, key)
        if value not in (None, False):
            os.environ[env] = str(value)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        "phonewire.cli:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        log_level=args.log_level,
        timeout_graceful_shutdown=5,
    )
    return 0


def app_from_env():
    """The demo app configured from PHONEWIRE_* variables (so every worker builds the same)."""
    from phonewire.demo.app import make_app
    from phonewire.server import ServerConfig

    env = os.environ.get
    vad = env(ENV["vad"], "silero")
    kwargs: dict[str, object] = {"vad": None if vad == "none" else vad}
    if env(ENV["stream_scheme"]):
        kwargs["stream_scheme"] = env(ENV["stream_scheme"])
    if env(ENV["trust_forwarded"]):
        kwargs["trust_forwarded"] = True
    if env(ENV["max_calls"]):
        kwargs["max_calls"] = int(env(ENV["max_calls"]) or 0)
    if env(ENV["providers"]):
        kwargs["providers"] = (env(ENV["providers"]) or "").split(",")
    if env(ENV["handshake_timeout"]):
        kwargs["handshake_timeout"] = float(env(ENV["handshake_timeout"]) or 10)
    if env(ENV["twilio_api_base_url"]):
        kwargs["serializer_kwargs"] = {"twilio": {"base_url": env(ENV["twilio_api_base_url"])}}
    app = make_app(ServerConfig(**kwargs))
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
