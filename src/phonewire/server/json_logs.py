"""JSON log lines (``--log-format json``): one object per line, call fields on every line.

Why: a log pipeline (Loki, CloudWatch, Elasticsearch) should not parse ``[twilio CA…]``
prefixes out of text. Each line carries ``ts`` (UTC, ISO 8601, milliseconds), ``level``,
``logger``, ``message`` and - on every line logged while a call is served, by the
transport's ``CallLog`` or by any service in the bot's pipeline - ``call_id``, ``provider``
and ``stream_id``; ``exc`` holds a traceback when there is one.

Peer values are already escaped by ``logsafe`` before any formatter runs (a ``\\n`` in a
call id is the two characters backslash and n); ``json.dumps`` then escapes only what JSON
needs, so a parsed ``message`` reads exactly as the readable format shows it, and with
``ensure_ascii`` no raw control or separator character can reach the line. The readable
format stays the default.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

__all__ = ["CALL_CONTEXT", "LOG_FORMATS", "JsonFormatter", "configure_logging", "uvicorn_log_config"]

#: The fields of the call being served in this task (set by ``lifecycle.CallRegistry.begin``).
CALL_CONTEXT: ContextVar[dict[str, str] | None] = ContextVar("phonewire_call_context", default=None)
READABLE = "%(asctime)s %(levelname)s %(name)s %(message)s"
LOG_FORMATS = ("text", "json")
_CALL_FIELDS = ("call_id", "provider", "stream_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = CALL_CONTEXT.get()
        for key in _CALL_FIELDS:
            value = getattr(record, key, None) or (context.get(key) if context else None)
            if value is not None:
                entry[key] = str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=True, default=str)


def _iso(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


def configure_logging(level: str, log_format: str = "text") -> None:
    """The root logger for ``phonewire serve`` (and each of its workers): readable or JSON."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    if log_format == "text":
        logging.basicConfig(level=level.upper(), format=READABLE)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def uvicorn_log_config(log_format: str) -> dict[str, Any] | None:
    """``log_config`` for uvicorn: None (its own) for text; for JSON its loggers use the
    same formatter, so startup lines and (redacted) access lines are JSON too."""
    if log_format != "json":
        return None
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "phonewire.server.json_logs.JsonFormatter"}},
        "handlers": {"json": handler},
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["json"], "level": "INFO", "propagate": False},
        },
    }
