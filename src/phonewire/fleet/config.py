"""FleetConfig: how one phonewire node joins a fleet of nodes that share a Redis.

Why a config of its own: a fleet is optional (``ServerConfig.fleet = None`` keeps every store
per process, exactly as before), and everything it adds - the shared token and webhook
stores, fleet-wide limits, the registry of live calls, commands between nodes, the command
API - hangs off one Redis URL. Defaults come from the environment so ``phonewire serve``
workers and pods pick them up without code.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field

from phonewire.exceptions import ConfigurationError

__all__ = ["FleetConfig"]


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def _env_int(name: str) -> int | None:
    value = _env(name)
    return int(value) if value else None


def _node_id() -> str:
    """Host name plus a short random suffix: unique per process (``--workers`` share a host)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(kw_only=True)
class FleetConfig:
    #: ``redis://[:password@]host:port/db`` (``rediss://`` for TLS).
    redis_url: str = field(default_factory=lambda: _env("PHONEWIRE_REDIS_URL") or "redis://127.0.0.1:6379/0")
    #: This process's name in the registry and its command channel.
    node_id: str = field(default_factory=lambda: _env("PHONEWIRE_NODE_ID") or _node_id())
    #: Every key and channel starts with this (several fleets can share one Redis).
    key_prefix: str = field(default_factory=lambda: _env("PHONEWIRE_FLEET_PREFIX") or "phonewire:")
    #: Calls served by the whole fleet at once (None: no fleet-wide cap; ``max_calls`` still
    #: caps each process). Refused calls close 1013, so the provider may retry.
    max_fleet_calls: int | None = field(default_factory=lambda: _env_int("PHONEWIRE_MAX_FLEET_CALLS"))
    #: Calls at once per called number (the tenant's line, ``CallInfo.to_number``).
    max_calls_per_number: int | None = field(default_factory=lambda: _env_int("PHONEWIRE_MAX_CALLS_PER_NUMBER"))
    #: A call's lease lives this long without a heartbeat: a crashed node's calls stop
    #: counting against the limits, and leave the registry, within this many seconds.
    lease_ttl_secs: float = 30.0
    #: How often a node renews the leases of its calls (one round trip for all of them).
    heartbeat_secs: float = 10.0
    #: Bound on every Redis round trip; past it the operation counts as Redis being down.
    redis_timeout_secs: float = 0.5
    #: How long a command waits for the node holding the call to answer.
    command_timeout_secs: float = 5.0
    #: Bearer token of the call-command API (``/fleet/...``); None: the API is not served.
    api_token: str | None = field(default_factory=lambda: _env("PHONEWIRE_FLEET_API_TOKEN"))

    def __post_init__(self) -> None:
        if self.lease_ttl_secs <= self.heartbeat_secs:
            raise ConfigurationError("FleetConfig.lease_ttl_secs must exceed heartbeat_secs (leases would lapse)")
        if self.redis_timeout_secs <= 0 or self.command_timeout_secs <= 0:
            raise ConfigurationError("FleetConfig timeouts must be positive")
        if self.api_token is not None and len(self.api_token) < 16:
            raise ConfigurationError("FleetConfig.api_token must be at least 16 characters")

    def __repr__(self) -> str:  # the URL may carry a password, the token is a credential
        api = "on" if self.api_token else "off"
        return f"FleetConfig(node_id={self.node_id!r}, prefix={self.key_prefix!r}, api={api})"
