"""Fleet: one node's part in a fleet - admission, its calls' leases, and commands.

Why one object: the server's call flow needs three questions answered per call - "may this
call start?" (``admit``), "it ended" (``release``), "do this to call X, wherever it is"
(``command``) - and the node has two owned background tasks to run (the heartbeat that keeps
its leases alive, the command channel). ``create_app`` builds it from ``ServerConfig.fleet``
and starts/stops it with the app's lifespan (``install_fleet``).

Redis down (docs/deployment.md, "When Redis is down"): ``admit`` raises ``FleetUnavailable``
and the server refuses the new call (1013, so a client that reconnects tries again); calls in
progress continue untouched (their leases are re-added by the first heartbeat that reaches
Redis again - retried every ``RETRY_SECS`` meanwhile); commands for other nodes fail with
503. Each outage is logged once per task when it starts and once when it ends (``OutageLog``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from phonewire.fleet.admission import ADMIT, RELEASE, RENEW
from phonewire.fleet.commands import CommandBus, apply_command
from phonewire.fleet.config import FleetConfig
from phonewire.fleet.redis_io import FleetRedis, FleetUnavailable, OutageLog
from phonewire.fleet.stores import RedisReplayStore, RedisSignedRequestStore

__all__ = ["Admission", "Fleet"]

logger = logging.getLogger("phonewire.fleet")

#: Seconds between heartbeats while Redis is unreachable (else ``heartbeat_secs``).
RETRY_SECS = 1.0


@dataclass(slots=True)
class Admission:
    """A call's lease: ``refusal`` is None when admitted; ``previous`` is the registry entry
    of a stream this one replaced (``duplicate_stream_policy="replace"``)."""

    member: str
    stream: str
    number: str
    entry: str
    refusal: str | None = None
    previous: dict[str, Any] | None = None


def call_key(provider: str, call_id: str | None, stream_id: str | None) -> str:
    # A stream with no call id (raw PCM without one) is its own call.
    return f"{provider}:{call_id}" if call_id else f"{provider}:stream:{stream_id or uuid.uuid4().hex}"


class Fleet:
    def __init__(self, config: FleetConfig, *, duplicate_policy: str = "refuse", redis: FleetRedis | None = None):
        self.config = config
        self.node_id = config.node_id
        self.duplicate_policy = duplicate_policy
        self.redis = redis or FleetRedis(config.redis_url, timeout=config.redis_timeout_secs)
        p = config.key_prefix
        self._leases, self._calls, self._numbers, self._node = f"{p}leases", f"{p}calls", f"{p}leases:num:", f"{p}node:"
        self.replay_store = RedisReplayStore(self.redis, p)
        self.request_store = RedisSignedRequestStore(self.redis, p)
        self._mine: dict[str, Admission] = {}
        #: (provider, call id) -> transport, this node's live calls (``server.live_calls.LiveCalls``).
        self.live: Any = None
        self.bus = CommandBus(self.redis, p, self.node_id, self._on_command, config.command_timeout_secs)
        self._heartbeat: asyncio.Task[None] | None = None
        self.heartbeat_outage = OutageLog(
            "fleet heartbeat", "calls in progress continue; new calls are refused; leases renew when Redis is back"
        )
        self._admit = self.redis.client.register_script(ADMIT)
        self._release = self.redis.client.register_script(RELEASE)
        self._renew = self.redis.client.register_script(RENEW)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.bus.start()
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat(), name="phonewire-fleet-heartbeat")
        logger.info("= fleet node %s joined (%s)", self.node_id, self.config.key_prefix)

    async def stop(self) -> None:
        task, self._heartbeat = self._heartbeat, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=2.0)
        await self.bus.stop()
        for admission in list(self._mine.values()):
            try:
                await self.release(admission)
            except FleetUnavailable:
                break  # the leases expire by themselves within lease_ttl_secs
        await self.redis.close()

    async def _beat(self) -> None:
        while True:
            # While Redis is away, retry every second: a Redis that comes back empty (restarted
            # without persistence, a failover) undercounts this node's calls until they are re-added.
            down = self.heartbeat_outage.down
            await asyncio.sleep(min(self.config.heartbeat_secs, RETRY_SECS) if down else self.config.heartbeat_secs)
            try:
                renewed = await self.renew()
            except FleetUnavailable as exc:
                self.heartbeat_outage.failed(exc)
            except Exception:  # a bug must not stop lease renewal for the rest of the process
                logger.exception("! fleet heartbeat failed unexpectedly (bug); retrying")
            else:
                if self.heartbeat_outage.down:
                    logger.info("= fleet leases renewed: %d of %d calls", renewed, len(self._mine))
                self.heartbeat_outage.ok()

    async def renew(self) -> int:
        """Renew this node's leases (one round trip for all its calls)."""
        ttl = int(self.config.lease_ttl_secs * 1000)
        node = json.dumps({"node": self.node_id, "calls": len(self._mine), "at": time.time()})
        args: list[Any] = [ttl, self._numbers, node]
        for a in self._mine.values():
            args += [a.member, a.number, a.entry]
        keys = [self._leases, self._calls, self._node + self.node_id]
        return int(await self.redis.run(self._renew(keys=keys, args=args)))

    # --- admission -------------------------------------------------------------------------

    async def admit(self, info: Any, *, verified: bool = True) -> Admission:
        """Take a lease for this call, or say why not (``max_fleet_calls``,
        ``max_calls_per_number``, ``duplicate``). Raises ``FleetUnavailable``. An unverified
        stream is keyed by its stream id: a forged call id must not collide with a real call."""
        cfg = self.config
        member = call_key(info.provider, info.call_id if verified else None, info.stream_id)
        number = (info.to_number or "") if cfg.max_calls_per_number else ""
        stream = uuid.uuid4().hex
        entry = json.dumps({
            "node": self.node_id, "since": time.time(), "provider": info.provider, "call_id": info.call_id,
            "to": number, "stream": stream,
        })  # fmt: skip
        admission = Admission(member, stream, number, entry)
        keys = [self._leases, self._calls, self._numbers + number if number else ""]
        args = [member, int(cfg.lease_ttl_secs * 1000), cfg.max_fleet_calls or 0, cfg.max_calls_per_number or 0,
                entry, self.duplicate_policy, self._numbers]  # fmt: skip
        verdict, previous = await self.redis.run(self._admit(keys=keys, args=args))
        verdict = verdict.decode() if isinstance(verdict, bytes) else str(verdict)
        if previous:
            admission.previous = json.loads(previous)
        if verdict != "ok":
            admission.refusal = verdict
            return admission
        self._mine[member] = admission
        return admission

    async def release(self, admission: Admission) -> None:
        if self._mine.get(admission.member) is admission:
            del self._mine[admission.member]
        keys = [self._leases, self._calls, self._numbers + admission.number if admission.number else ""]
        await self.redis.run(self._release(keys=keys, args=[admission.member, admission.stream]))

    async def takeover(self, admission: Admission) -> None:
        """A replacing stream was admitted: tell the node holding the old one to let it go."""
        prev = admission.previous or {}
        node, provider, call_id = prev.get("node"), prev.get("provider"), prev.get("call_id")
        if not node or node == self.node_id:
            return  # local: the server detaches it from LiveCalls itself
        result = await self.bus.send(str(node), {"command": "detach", "provider": provider, "call_id": call_id,
                                                  "stream": prev.get("stream")})  # fmt: skip
        logger.info("= replaced a stream on node %s: %s", node, result)

    # --- the registry and commands ------------------------------------------------------------

    async def calls(self) -> list[dict[str, Any]]:
        """The fleet's live calls (entries whose lease has not expired), one round trip."""
        pipe = self.redis.client.pipeline(transaction=False)
        pipe.hgetall(self._calls)
        pipe.zrangebyscore(self._leases, int(time.time() * 1000), "+inf")
        entries, live = await self.redis.run(pipe.execute())
        alive = {m.decode() if isinstance(m, bytes) else m for m in live}
        out = []
        for key, value in entries.items():
            member = key.decode() if isinstance(key, bytes) else key
            if member in alive:
                out.append({"key": member, **json.loads(value)})
        return sorted(out, key=lambda e: e.get("since", 0))

    async def command(self, provider: str, call_id: str, command: dict[str, Any]) -> dict[str, Any]:
        """Run ``command`` on the call, on whichever node holds it."""
        command = {**command, "provider": provider, "call_id": call_id}
        if self.live is not None and self.live.get(provider, call_id) is not None:
            return await self._on_command(command)
        raw = await self.redis.run(self.redis.client.hget(self._calls, call_key(provider, call_id, None)))
        if raw is None:
            return {"ok": False, "error": "no such live call", "status": 404}
        node = json.loads(raw).get("node")
        return {**await self.bus.send(str(node), command), "node": node}

    async def _on_command(self, command: dict[str, Any]) -> dict[str, Any]:
        transport = self.live.get(str(command.get("provider")), str(command.get("call_id"))) if self.live else None
        if transport is None:
            return {"ok": False, "error": "no such live call on this node", "status": 404}
        mine = self._mine.get(call_key(str(command.get("provider")), str(command.get("call_id")), None))
        if command.get("command") == "detach" and mine is not None and mine.stream != command.get("stream"):
            return {"ok": False, "error": "stream already replaced"}
        return {**await apply_command(transport, command), "node": self.node_id}
