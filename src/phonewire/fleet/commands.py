"""Call commands between nodes over Redis pub/sub, and what they do to a call.

Why pub/sub: a command API request (hang up, transfer, say) lands on whichever node the load
balancer picked, while the call's WebSocket - and so its pipeline - lives on one node only.
Each node subscribes to its own channel (``<prefix>node:<id>``); the node that took the
request looks the call up in the registry, publishes the command to the owner's channel and
waits (bounded) for the owner's reply on its own channel. A publish no node received (the
owner crashed, its lease not yet expired) answers at once. Redis is the trust boundary here:
anyone who can publish to it can command calls, so give it a password and keep it private.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from phonewire.fleet.redis_io import FleetRedis, FleetUnavailable, OutageLog

__all__ = ["COMMANDS", "CommandBus", "apply_command"]

logger = logging.getLogger("phonewire.fleet")

COMMANDS = ("hangup", "transfer", "say", "detach")
#: Commands being executed at once for other nodes; more are answered "busy".
MAX_IN_FLIGHT = 64
#: Seconds between reconnection attempts when the subscription's connection is lost.
RESUBSCRIBE_SECS = 1.0

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def apply_command(transport: Any, command: dict[str, Any]) -> dict[str, Any]:
    """Do ``command`` to the call whose transport this is, from its input transport (so the
    frames enter the pipeline at its start): ``say`` queues a TTSSpeakFrame, ``transfer`` a
    TransferCallFrame (the call-control output handles it), ``hangup`` an optional goodbye
    then an EndTaskFrame (queued audio plays out, then the provider hang-up, as when the bot
    ends a call), ``detach`` closes this stream without a hang-up (another stream took over)."""
    from phonewire.frames import EndTaskFrame, FrameDirection, TransferCallFrame, TTSSpeakFrame

    kind = command.get("command")
    source = transport.input()
    if kind == "say":
        text = str(command.get("text") or "")
        if not text:
            return {"ok": False, "error": "say needs text"}
        await source.push_frame(TTSSpeakFrame(text=text), FrameDirection.DOWNSTREAM)
    elif kind == "transfer":
        to = str(command.get("to") or "")
        if not to:
            return {"ok": False, "error": "transfer needs to"}
        frame = TransferCallFrame(to=to, warm=bool(command.get("warm")), summary=command.get("summary"))
        await source.push_frame(frame, FrameDirection.DOWNSTREAM)
    elif kind == "hangup":
        if command.get("text"):
            await source.push_frame(TTSSpeakFrame(text=str(command["text"])), FrameDirection.DOWNSTREAM)
        await source.push_frame(EndTaskFrame(reason="hung up by command"), FrameDirection.UPSTREAM)
    elif kind == "detach":
        await transport.detach(str(command.get("reason") or "replaced by a new stream"))
    else:
        return {"ok": False, "error": f"unknown command (use {', '.join(COMMANDS)})"}
    transport.log.info("= command %s applied", kind)
    return {"ok": True}


class CommandBus:
    """This node's channel: executes commands sent to it, and sends commands to others."""

    def __init__(self, redis: FleetRedis, prefix: str, node_id: str, handler: Handler, timeout: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.node_id = node_id
        self.handler = handler
        self.timeout = timeout
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._first_attempt = asyncio.Event()  # the first subscribe answered, or failed
        self.outage = OutageLog("fleet command channel", "commands for this node's calls fail until it is back")

    def channel(self, node_id: str) -> str:
        return f"{self.prefix}node:{node_id}"

    async def start(self) -> None:
        self._listener = asyncio.get_running_loop().create_task(self._listen(), name="phonewire-fleet-commands")
        # Wait for the first subscribe only: it is one bounded round trip, so a node starting
        # while Redis is down starts within redis_timeout_secs (the listener keeps trying).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.redis.timeout + 1.0):
                await self._first_attempt.wait()

    async def stop(self) -> None:
        tasks = [t for t in (self._listener, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        for waiter in self._waiting.values():
            waiter.cancel()

    async def send(self, node_id: str, command: dict[str, Any]) -> dict[str, Any]:
        """Run ``command`` on ``node_id`` and return its answer (bounded by ``timeout``)."""
        request_id = uuid.uuid4().hex
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = waiter
        message = {"kind": "request", "id": request_id, "reply_to": self.node_id, "command": command}
        try:
            received = await self.redis.run(self.redis.client.publish(self.channel(node_id), json.dumps(message)))
            if not received:
                return {"ok": False, "error": f"node {node_id} is not listening"}
            async with asyncio.timeout(self.timeout):
                return await waiter
        except TimeoutError:
            return {"ok": False, "error": f"node {node_id} did not answer in {self.timeout:.1f}s"}
        finally:
            self._waiting.pop(request_id, None)

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.client.pubsub(ignore_subscribe_messages=True)
            try:
                await self.redis.run(pubsub.subscribe(self.channel(self.node_id)))
                self._subscribed.set()
                self._first_attempt.set()
                self.outage.ok()
                while True:
                    message = await pubsub.get_message(timeout=1.0)  # bounded: re-checks the socket
                    if message is not None and message.get("type") == "message":
                        self._on_message(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the connection dropped (or never came): subscribe again
                self._first_attempt.set()
                self.outage.failed(exc if isinstance(exc, FleetUnavailable) else FleetUnavailable(type(exc).__name__))
            finally:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.redis.timeout):
                        await pubsub.aclose()
            await asyncio.sleep(RESUBSCRIBE_SECS)

    def _on_message(self, data: bytes | str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            logger.warning("! fleet command channel: a message that is not JSON, skipped")
            return
        if not isinstance(message, dict):
            return
        if message.get("kind") == "reply":
            waiter = self._waiting.get(str(message.get("id")))
            if waiter is not None and not waiter.done():
                waiter.set_result(message.get("result") or {"ok": False})
        elif message.get("kind") == "request":
            if len(self._tasks) >= MAX_IN_FLIGHT:
                self._spawn(self._reply(message, {"ok": False, "error": "busy"}))
            else:
                self._spawn(self._execute(message))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro, name="phonewire-fleet-command")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, message: dict[str, Any]) -> None:
        command = message.get("command")
        try:
            async with asyncio.timeout(self.timeout):
                result = await self.handler(command if isinstance(command, dict) else {})
        except Exception as exc:
            logger.exception("! fleet command failed")
            result = {"ok": False, "error": type(exc).__name__}
        await self._reply(message, result)

    async def _reply(self, message: dict[str, Any], result: dict[str, Any]) -> None:
        reply = {"kind": "reply", "id": message.get("id"), "result": result}
        try:
            channel = self.channel(str(message.get("reply_to")))
            await self.redis.run(self.redis.client.publish(channel, json.dumps(reply)))
        except FleetUnavailable:
            logger.warning("! could not answer a fleet command: redis unavailable")
