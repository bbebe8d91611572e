"""The web server's own limits and log hygiene, in one place for ``phonewire serve`` and for
anyone who runs ``create_app`` under uvicorn themselves::

    config = ServerConfig(...)
    app = create_app(bot, config)
    uvicorn.run(app, host="0.0.0.0", port=8000, **uvicorn_config_kwargs(config))

uvicorn's defaults were the review's easiest wins (issue 11, finding 8): no deadline on
request headers (slowloris), no header size limit under httptools (a 64 MiB header got
HTTP 200), 16 MiB WebSocket messages buffered whole before the app could refuse them, and
no bound on connections. ``uvicorn_config_kwargs`` sets: h11 with a header deadline and a
body deadline, a per-address cap on requests in flight (``http_protocol.py``) and
``h11_max_incomplete_event_size``;
``ws_max_size`` = the transport's ``max_message_bytes``; ``limit_concurrency`` (HTTP
requests get 503 beyond it; WebSocket calls are bounded by ``max_calls`` and the pending
caps in the app); pings to find dead peers; no ``Server`` header.

It also installs ``UvicornLogFilter`` (finding 9): uvicorn logs every request's path with
its query string - Exotel stream URLs carry the stream token there, Vonage answer webhooks
the caller's number - so query values and phone-number-like runs are redacted, and
uvicorn's traceback for each invalid UTF-8 text frame becomes one counted line.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

from phonewire.server.config import ServerConfig
from phonewire.server.http_protocol import PhonewireH11Protocol
from phonewire.transports.params import FastAPIWebsocketParams

__all__ = ["UVICORN_LOG_EVENTS", "UvicornLogFilter", "install_uvicorn_log_filter", "uvicorn_config_kwargs"]

#: Connections allowed beyond calls and pending handshakes, for webhooks and health checks.
HTTP_HEADROOM = 64

#: uvicorn log events this filter rewrote, by kind (rendered at /metrics).
UVICORN_LOG_EVENTS: Counter[str] = Counter()

_QUERY_VALUE = re.compile(r"([?&][^=&#]*=)[^&#]*")
_PHONE_LIKE = re.compile(r"(?:\+|%2[bB])?\d{6,}")
_UTF8_MESSAGE = "Invalid UTF-8 sequence received from client."


def max_message_bytes(config: ServerConfig) -> int:
    value = config.transport_params.get("max_message_bytes", FastAPIWebsocketParams.max_message_bytes)
    return int(value)


def uvicorn_config_kwargs(config: ServerConfig) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` that enforce ``config``'s
    web server limits. Also installs the log filter on uvicorn's loggers."""
    PhonewireH11Protocol.configure(
        header_timeout=config.header_timeout,
        max_pending_per_client=config.max_pending_per_client,
        body_timeout=config.webhook_body_timeout + 1.0,  # a backstop: the webhook's own 408 comes first
    )
    install_uvicorn_log_filter()
    connections = config.max_connections or config.max_calls + config.max_pending_handshakes + HTTP_HEADROOM
    return {
        "http": PhonewireH11Protocol,
        "h11_max_incomplete_event_size": config.max_header_bytes,
        "ws": "websockets-sansio",
        "ws_max_size": max_message_bytes(config),
        "ws_max_queue": 16,
        "ws_per_message_deflate": False,
        "ws_ping_interval": 20.0,
        "ws_ping_timeout": 20.0,
        "timeout_keep_alive": 5,
        "limit_concurrency": connections,
        "server_header": False,
    }


def render_counters() -> str:
    """Prometheus lines for what the web server layer refused or condensed (process-wide)."""
    from phonewire.server.http_protocol import HTTP_REFUSALS

    lines = [f'phonewire_http_connections_closed_total{{reason="{k}"}} {v}' for k, v in sorted(HTTP_REFUSALS.items())]
    lines.append(f"phonewire_invalid_utf8_frames_total {UVICORN_LOG_EVENTS['invalid_utf8']}")
    return "\n".join(lines) + "\n"


def redact_path(path: str) -> str:
    """``/ws?phonewireToken=abc&from=+4477…`` -> ``/ws?phonewireToken=…&from=…``; digits runs
    that could be phone numbers in the path itself become ``…`` too."""
    return _PHONE_LIKE.sub("…", _QUERY_VALUE.sub(r"\1…", path))


class UvicornLogFilter(logging.Filter):
    """Redacts request paths in uvicorn's access and WebSocket lines; condenses the invalid
    UTF-8 traceback to one line, logged the first time and every 100th."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == _UTF8_MESSAGE:
            UVICORN_LOG_EVENTS["invalid_utf8"] += 1
            count = UVICORN_LOG_EVENTS["invalid_utf8"]
            record.exc_info, record.exc_text, record.levelno, record.levelname = None, None, logging.WARNING, "WARNING"
            record.msg = "! invalid UTF-8 in a text frame: the connection is closed with 1007 (%d so far)"
            record.args = (count,)
            return count == 1 or count % 100 == 0
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(redact_path(a) if isinstance(a, str) and a.startswith("/") else a for a in record.args)
        return True


_FILTER = UvicornLogFilter()


def install_uvicorn_log_filter() -> None:
    """Idempotent: on ``uvicorn.access`` (requests) and ``uvicorn.error`` (WebSocket lines)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        target = logging.getLogger(name)
        if not any(isinstance(f, UvicornLogFilter) for f in target.filters):
            target.addFilter(_FILTER)
