"""``phonewire call URL``: call a bot as a telephony provider would and print the report.

The CLI entry point (``phonewire.cli``) registers the sub-command with ``add_arguments`` and
runs it with ``asyncio.run(run(args))``. Exit status: 0 if the call completed, 1 if it did
not (refused, dropped, timed out), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TextIO

from phonewire.exceptions import ConfigurationError
from phonewire.testing.bot_turns import fetch_bot_turns
from phonewire.testing.fake_api import FakeProviderAPI
from phonewire.testing.network import NetworkConditions
from phonewire.testing.providers import PROVIDERS
from phonewire.testing.report import ProgressSnapshot, render_progress
from phonewire.testing.script import default_script
from phonewire.testing.simulator import simulate_call

__all__ = ["add_arguments", "run"]


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``phonewire call``'s arguments to ``parser``."""
    parser.add_argument("url", help="the bot's WebSocket URL, e.g. ws://127.0.0.1:8000/media")
    parser.add_argument("--provider", default="twilio", choices=sorted(PROVIDERS), help="default: twilio")
    parser.add_argument("--audio", metavar="FILE.wav", help="what the caller asks (default: built-in recording)")
    parser.add_argument("--record", metavar="OUT.wav", help="write a stereo WAV: caller left, bot right")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--progress", action="store_true", help="show the live status line even if not a TTY")
    parser.add_argument("--max-duration", type=float, default=60.0, metavar="S", help="default: 60")
    parser.add_argument(
        "--param",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="custom parameter for the start message (repeatable)",
    )
    parser.add_argument(
        "--header",
        type=_header,
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra WebSocket handshake header (repeatable)",
    )
    network = parser.add_argument_group("network impairments (caller -> bot)")
    network.add_argument("--jitter-ms", type=float, default=0.0, metavar="N")
    network.add_argument("--loss", type=float, default=0.0, metavar="P", help="media loss probability 0-1")
    network.add_argument("--reorder", type=float, default=0.0, metavar="P", help="reorder probability 0-1")
    network.add_argument("--stall-at", type=float, metavar="S", help="hold all messages from S seconds ...")
    network.add_argument("--stall-ms", type=float, default=0.0, metavar="N", help="... for N ms")
    network.add_argument("--disconnect-at", type=float, metavar="S", help="drop the socket at S seconds")
    network.add_argument("--seed", type=int, default=0, help="random seed for the impairments")
    api = parser.add_argument_group("provider REST API")
    api.add_argument(
        "--fake-api",
        action="store_true",
        help="serve a fake provider REST API; the bot's hang-up over it ends the call",
    )
    api.add_argument("--fake-api-port", type=int, default=0, metavar="PORT", help="default: a free port")
    parser.add_argument(
        "--console-token",
        default=os.environ.get("PHONEWIRE_CONSOLE_TOKEN"),
        metavar="TOKEN",
        help="a phonewire server's console token (default $PHONEWIRE_CONSOLE_TOKEN): the report then adds"
        " the bot's own latency breakdown of each turn from /calls/api",
    )


async def run(args: argparse.Namespace) -> int:
    """Make the call described by ``args``; print progress to stderr and the report to stdout."""
    try:
        network = _network(args)
        script = default_script(args.audio)
    except (ConfigurationError, OSError, ValueError) as exc:
        print(f"phonewire call: {exc}", file=sys.stderr)
        return 2
    show_progress = args.progress or sys.stderr.isatty()
    api = FakeProviderAPI(port=args.fake_api_port) if args.fake_api else None
    if api is not None:
        await api.start()
        print(f"fake {args.provider} REST API at {api.base_url}", file=sys.stderr)
    try:
        report = await simulate_call(
            args.url,
            provider=args.provider,
            script=script,
            network=network,
            record_path=args.record,
            custom_parameters=dict(args.param),
            max_duration_s=args.max_duration,
            progress=_printer(sys.stderr) if show_progress else None,
            headers=dict(args.header),
            api=api,
        )
    finally:
        if api is not None:
            await api.stop()
    if show_progress:
        print(file=sys.stderr)
    if args.console_token and report.call_id:
        try:
            report.bot_turns = await fetch_bot_turns(args.url, report.call_id, args.console_token)
        except Exception as exc:  # the breakdown is extra: the call's own report still prints
            report.warnings.append(f"bot turns not fetched from the console API: {type(exc).__name__}: {exc}")
    print(report.to_json() if args.json else report.render_text())
    return 0 if report.completed else 1


def _network(args: argparse.Namespace) -> NetworkConditions:
    return NetworkConditions(
        jitter_ms=args.jitter_ms,
        loss=args.loss,
        reorder=args.reorder,
        stall_at_s=args.stall_at,
        stall_ms=args.stall_ms,
        disconnect_at_s=args.disconnect_at,
        seed=args.seed,
    )


def _printer(stream: TextIO) -> Callable[[ProgressSnapshot], None]:
    def show(snapshot: ProgressSnapshot) -> None:
        stream.write(render_progress(snapshot))
        stream.flush()

    return show
