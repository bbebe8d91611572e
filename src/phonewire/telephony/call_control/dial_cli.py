"""``phonewire dial``: place one outbound call that streams to a running phonewire server.

Credentials come from the environment (``TWILIO_ACCOUNT_SID``/``TWILIO_AUTH_TOKEN``,
``TELNYX_API_KEY``/``TELNYX_CONNECTION_ID``, ``PLIVO_AUTH_ID``/``PLIVO_AUTH_TOKEN``,
``VONAGE_APPLICATION_ID``/``VONAGE_PRIVATE_KEY``), never from the command line, so they stay
out of shell history and process lists. Prints the placed call as JSON (no credentials).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from phonewire.exceptions import PhonewireError
from phonewire.telephony.call_control.outbound import place_call

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", required=True, choices=["twilio", "telnyx", "plivo", "vonage"])
    p.add_argument("--to", required=True, help="the number to call, E.164 (+14155550100)")
    p.add_argument("--from", dest="from_", required=True, help="your provider number to call from, E.164")
    p.add_argument("--bot", required=True, help="public base URL of the phonewire server, e.g. https://bot.example.com")
    p.add_argument("--no-amd", action="store_true", help="do not ask for answering-machine detection")
    p.add_argument("--ring-timeout", type=int, default=None, help="seconds to ring before giving up")
    p.add_argument("--api-base", default=None, help="the provider's API root (e.g. a FakeProviderAPI)")


def run(args: argparse.Namespace) -> int:
    extra = {"api_base": args.api_base} if args.api_base else {}
    if args.ring_timeout:
        extra["ring_timeout_s"] = args.ring_timeout
    try:
        placed = asyncio.run(place_call(args.provider, args.to, args.from_, bot=args.bot, amd=not args.no_amd, **extra))
    except PhonewireError as exc:
        sys.stderr.write(f"phonewire dial: {exc}\n")
        return 1
    summary = {"provider": placed.provider, "call_id": placed.call_id, "ref": placed.ref, "status": placed.status}
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0
