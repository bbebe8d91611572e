"""Log lines that a peer cannot forge: control characters in logged values are escaped.

Call ids, stream ids, numbers and custom parameters come from the peer's messages and are
logged (the per-call prefix ``[twilio CA…]`` among them). A ``callSid`` of
``"x\\n2026-01-01 INFO phonewire.server [forged] …"`` used to write a second, forged line,
and an ANSI escape could rewrite a terminal (issue 11, finding 7). ``ControlCharFilter``
escapes C0/C1 control characters, DEL and the Unicode line/paragraph separators in a
record's message and string arguments before any handler formats it, so every phonewire
record is one line whatever the peer sent. ``install()`` puts it on every phonewire logger
(loggers filter only their own records, not their children's, hence one per name).

Tracebacks (``exc_info``) are left alone: they are ours, and multi-line by nature.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["PHONEWIRE_LOGGERS", "ControlCharFilter", "escape_control", "install"]

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

#: Every logger phonewire logs peer values through.
PHONEWIRE_LOGGERS = (
    "phonewire",
    "phonewire.events",
    "phonewire.handshake",
    "phonewire.hangup",
    "phonewire.pipeline",
    "phonewire.processors",
    "phonewire.server",
    "phonewire.testing",
    "phonewire.transport",
    "phonewire.vad",
    "phonewire.webhooks",
)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def escape_control(text: str) -> str:
    """``text`` with control characters written as escapes (``\\n``, ``\\x1b``, ``\\u2028``)."""
    if _CONTROL.search(text) is None:  # the common case: nothing to do, no copy
        return text
    return _CONTROL.sub(_escape, text)


def _safe_arg(arg: Any) -> Any:
    if isinstance(arg, str):
        return escape_control(arg)
    if arg is None or isinstance(arg, int | float):
        return arg  # keeps %d / %.1f working
    text = str(arg)  # objects (exceptions, CallInfo) render via their own str: escape that
    return escape_control(text) if _CONTROL.search(text) else arg


class ControlCharFilter(logging.Filter):
    """Escapes control characters in a record's message and arguments (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = escape_control(record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_safe_arg(a) for a in args)
        elif isinstance(args, dict):
            record.args = {k: _safe_arg(v) for k, v in args.items()}
        return True


_FILTER = ControlCharFilter()


def install(*names: str) -> None:
    """Put the filter on phonewire's loggers (and ``names``); idempotent.

    A logger's filter does not apply to its children's records, so every ``phonewire.*``
    logger that exists now gets it too; ``PipelineTask`` calls this once per call, by which
    time every service module a bot uses has created its logger.
    """
    existing = [n for n in logging.Logger.manager.loggerDict if n.startswith("phonewire.")]
    for name in (*PHONEWIRE_LOGGERS, *existing, *names):
        target = logging.getLogger(name)
        if not any(isinstance(f, ControlCharFilter) for f in target.filters):
            target.addFilter(_FILTER)
