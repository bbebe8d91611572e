"""A fleet of phonewire nodes on one Redis (docs/deployment.md, "A fleet").

``ServerConfig(fleet=FleetConfig(redis_url=...))`` makes stream tokens and webhook replay
memory single-use across machines, caps calls fleet-wide and per called number with leases
that a crashed node cannot leak, keeps a registry of live calls (which node, since when),
and routes call commands (hang up, transfer, say) to whichever node holds the call. Needs
``pip install 'phonewire[redis]'``. Without it, everything stays per process.
"""

from phonewire.fleet.config import FleetConfig
from phonewire.fleet.node import Admission, Fleet
from phonewire.fleet.redis_io import FleetRedis, FleetUnavailable
from phonewire.fleet.stores import RedisReplayStore, RedisSignedRequestStore

__all__ = [
    "Admission",
    "Fleet",
    "FleetConfig",
    "FleetRedis",
    "FleetUnavailable",
    "RedisReplayStore",
    "RedisSignedRequestStore",
]
