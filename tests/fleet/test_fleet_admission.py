"""Fleet admission: the per-number (per-tenant) limit and the fleet-wide cap, across two nodes.

A real ``redis-server`` and two in-process nodes (``create_app`` on uvicorn, 127.0.0.1) with
``FleetConfig(max_calls_per_number=2, max_fleet_calls=3)``. Calls are real simulated Twilio
streams carrying what the signed answer webhook put in the TwiML (stream token, called
number). Shows: number A's third call is refused 1013 on either node while its two calls are
spread over both; number B is still admitted; the fleet cap then refuses any number; a call
ending releases its lease (Redis's per-number set shrinks) and number A is admitted again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis.asyncio as aioredis
from fleet_harness import (
    EchoBots,
    HoldUntil,
    LocalNode,
    LogLines,
    eventually,
    free_port,
    local_node,
    needs_redis,
    start_redis,
    stop_process,
    stream_parameters,
)

from phonewire.testing import CallReport, HangUp, Silence, TwilioClient, simulate_call
from support.signed_webhooks import ACCOUNT_SID

pytestmark = needs_redis

NUMBER_A = "+15550100"
NUMBER_B = "+15550200"
PREFIX = "phonewire:"


def _sid(n: int) -> str:
    return "CA" + f"{n:032d}"


async def _call(node: LocalNode, sid: str, to: str, script: list[object]) -> CallReport:
    """A call to ``to`` as Twilio places it: the answer webhook, then the stream it names."""
    answer = await node.answer(sid, to)
    assert answer.status_code == 200 and "<Connect><Stream" in answer.text, answer.text
    params = stream_parameters(answer.text)
    assert params["to_number"] == to and params["phonewireToken"], params  # the limit is the stream's
    client = TwilioClient(account_sid=ACCOUNT_SID, call_sid=sid, custom_parameters=params)
    return await simulate_call(node.ws, provider=client, script=script, max_duration_s=60)  # type: ignore[arg-type]


async def _refused(node: LocalNode, sid: str, to: str) -> CallReport:
    report = await _call(node, sid, to, [Silence(5), HangUp()])
    assert report.close_code == 1013, report.render_text()
    assert report.duration_s < 2, report.render_text()  # closed at admission, not after the script
    return report


def test_per_number_limit_and_fleet_cap_across_two_nodes(tmp_path: Path) -> None:
    async def main() -> None:
        port = free_port()
        redis_proc = await start_redis(tmp_path, port)
        bots, release = EchoBots(), asyncio.Event()
        db = aioredis.Redis(port=port)
        try:
            limits = {"max_calls_per_number": 2, "max_fleet_calls": 3}
            with LogLines().installed() as log:
                async with (
                    local_node(bots, "node-a", port, **limits) as a,
                    local_node(bots, "node-b", port, **limits) as b,
                ):
                    await _scenario(a, b, bots, release, db, log)
        finally:
            release.set()
            await db.aclose()
            await stop_process(redis_proc)

    asyncio.run(asyncio.wait_for(main(), 60))


async def _scenario(
    a: LocalNode, b: LocalNode, bots: EchoBots, release: asyncio.Event, db: aioredis.Redis, log: LogLines
) -> None:
    # Number A's two calls at once, one on each node.
    a1 = asyncio.create_task(_call(a, _sid(1), NUMBER_A, [HoldUntil(release), HangUp()]))
    ended = asyncio.Event()
    a2 = asyncio.create_task(_call(b, _sid(2), NUMBER_A, [HoldUntil(ended), HangUp()]))
    for sid in (_sid(1), _sid(2)):
        await asyncio.wait_for(bots.started(sid).wait(), 10)
    assert await db.zcard(f"{PREFIX}leases:num:{NUMBER_A}") == 2

    # A third call to number A is refused on either node: the limit is the fleet's, not a node's.
    for node, sid in ((a, _sid(3)), (b, _sid(4))):
        await _refused(node, sid, NUMBER_A)
        assert not bots.started(sid).is_set(), "a refused call never reaches the bot"
        line = f"[twilio {sid}] ! refusing the call: fleet limit max_calls_per_number; closing with 1013"
        assert log.matching(line), log.lines[-5:]
    for node in (a, b):  # each node counted its own refusal
        assert await node.metric("phonewire_calls_refused_total", reason="fleet") == 1
        assert await node.metric("phonewire_calls_started_total", provider="twilio") == 1

    # Number B is another tenant: admitted (the fleet now holds 3 calls, its cap).
    b1 = asyncio.create_task(_call(a, _sid(5), NUMBER_B, [HoldUntil(release), HangUp()]))
    await asyncio.wait_for(bots.started(_sid(5)).wait(), 10)
    registry = (await b.get("/fleet/calls")).json()["calls"]
    assert sorted((c["to"], c["node"]) for c in registry) == [
        (NUMBER_A, "node-a"), (NUMBER_A, "node-b"), (NUMBER_B, "node-a"),
    ], registry  # fmt: skip

    # The fleet-wide cap: a fourth call is refused whatever its number, on the node with room.
    await _refused(b, _sid(6), NUMBER_B)
    assert log.matching(f"[twilio {_sid(6)}] ! refusing the call: fleet limit max_fleet_calls; closing with 1013")
    assert await b.metric("phonewire_calls_refused_total", reason="fleet") == 2

    # A call to number A ends: its lease is released at once (not left to expire) ...
    ended.set()
    report = await asyncio.wait_for(a2, 15)
    assert report.completed and report.close_code != 1013, report.render_text()

    async def slot_free() -> bool:
        return int(await db.zcard(f"{PREFIX}leases:num:{NUMBER_A}")) == 1

    took = await eventually(slot_free, "number A's lease released")
    assert took < 2, took  # the release is the call's last step, not the 30 s lease expiry
    # ... and number A is admitted again, on either node.
    again = await _call(b, _sid(7), NUMBER_A, [Silence(0.5), HangUp()])
    assert again.completed and again.close_code != 1013, again.render_text()
    assert bots.started(_sid(7)).is_set()

    release.set()
    for task in (a1, b1):
        report = await asyncio.wait_for(task, 15)
        assert report.completed, report.render_text()

    async def all_released() -> bool:
        return int(await db.zcard(f"{PREFIX}leases")) == 0 and not await db.hlen(f"{PREFIX}calls")

    await eventually(all_released, "every lease released")
