"""Redis down: at start, killed mid-call, frozen (SIGSTOP), and back (docs/deployment.md,
"When Redis is down").

Two in-process nodes on a real ``redis-server`` the test starts, kills and restarts on the
same port: ``node-a`` authenticates streams (a stream secret: tokens are claimed in Redis),
``node-b`` has no secret (its streams go straight to the fleet's admission). What a
production operator needs, asserted:

* a node starts while Redis is unreachable (bounded), and serves nothing it cannot check;
* new calls fail fast and say why: the answer webhook 503 (the provider retries or takes its
  fallback URL), a stream whose token cannot be checked 1013, a stream that cannot take its
  lease 1013 - each within ``redis_timeout_secs`` plus a margin, also when Redis is frozen and
  only the timeout can tell; each logged and counted;
* a live call goes on undisturbed through the outage (every packet echoed, no gap);
* once Redis is back (restarted empty), the heartbeat puts the live call's lease back, new
  calls are admitted, and the command channel is resubscribed: a command sent through the
  other node reaches the call.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import redis.asyncio as aioredis
from fleet_harness import (
    SECRET,
    EchoBots,
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

from phonewire.telephony.tokens import StreamTokenSigner
from phonewire.testing import CallReport, HangUp, Silence, TwilioClient, WaitForBotAudio, simulate_call
from support.signed_webhooks import ACCOUNT_SID

pytestmark = needs_redis

NUMBER = "+15550100"
FLEET = {"heartbeat_secs": 0.5, "lease_ttl_secs": 3.0, "redis_timeout_secs": 0.5}
#: A refusal that needs Redis must come within redis_timeout_secs and this much more.
MARGIN = 1.0
BRIEF = [Silence(3), HangUp()]  # a refused stream is closed long before this script ends


def _sid(n: int) -> str:
    return "CA" + f"{n:032d}"


async def _stream(node: LocalNode, sid: str, params: dict[str, str], script: list[object]) -> CallReport:
    client = TwilioClient(account_sid=ACCOUNT_SID, call_sid=sid, custom_parameters=params)
    return await simulate_call(node.ws, provider=client, script=script, max_duration_s=90)  # type: ignore[arg-type]


async def _admitted_call(node: LocalNode, sid: str, script: list[object]) -> CallReport:
    answer = await node.answer(sid, NUMBER)
    assert answer.status_code == 200, answer.text
    return await _stream(node, sid, stream_parameters(answer.text), script)


async def _outcomes_while_down(a: LocalNode, b: LocalNode, bots: EchoBots, log: LogLines, n: int) -> None:
    """New calls while Redis cannot answer: each refused fast, logged and counted."""
    bound = FLEET["redis_timeout_secs"] + MARGIN
    webhook = {"provider": "twilio", "reason": "request memory unavailable"}
    rejected, refused, refused_webhooks = (
        await a.metric("phonewire_streams_rejected_total"),
        await b.metric("phonewire_calls_refused_total", reason="fleet"),
        await a.metric("phonewire_webhook_refusals_total", **webhook),
    )
    # The answer webhook: 503, so the provider retries or takes the number's fallback URL.
    started = time.monotonic()
    answer = await a.answer(_sid(n), NUMBER)
    assert answer.status_code == 503 and time.monotonic() - started < bound, (answer.status_code, answer.text)
    assert log.matching("! webhook request memory unavailable (FleetUnavailable): answering 503")
    assert await a.metric("phonewire_webhook_refusals_total", **webhook) == refused_webhooks + 1
    # A stream whose token was minted before: its single use cannot be proven, refused 1013
    # (try again later: not a bad token).
    token = StreamTokenSigner(SECRET).mint(_sid(n + 1), provider="twilio", account=ACCOUNT_SID)
    report = await _stream(a, _sid(n + 1), {"phonewireToken": token, "to_number": NUMBER}, BRIEF)
    assert report.close_code == 1013 and report.duration_s < bound, report.render_text()
    assert log.matching(f"[twilio {_sid(n + 1)}] ! stream token not checked: replay store unavailable")
    assert await a.metric("phonewire_streams_rejected_total") == rejected + 1
    # A stream with no token to check (node-b): its lease cannot be taken, refused 1013.
    report = await _stream(b, _sid(n + 2), {"to_number": NUMBER}, BRIEF)
    assert report.close_code == 1013 and report.duration_s < bound, report.render_text()
    assert log.matching(f"[twilio {_sid(n + 2)}] ! refusing the call: fleet unavailable (redis: ")
    assert await b.metric("phonewire_calls_refused_total", reason="fleet") == refused + 1
    # The command API cannot reach the registry: 503.
    assert (await b.get("/fleet/calls")).status_code == 503
    for sid in (_sid(n), _sid(n + 1), _sid(n + 2)):
        assert not bots.started(sid).is_set()


async def _subscribed(db: aioredis.Redis, *nodes: LocalNode) -> bool:
    try:
        counts = await db.pubsub_numsub(*(f"phonewire:node:{node.name}" for node in nodes))
    except (aioredis.ConnectionError, OSError):
        return False
    return all(int(count) == 1 for _, count in counts)


def test_redis_down_at_start_mid_call_and_back(tmp_path: Path) -> None:
    async def main() -> None:
        port = free_port()  # nothing listens there yet
        bots, procs = EchoBots(), []
        db = aioredis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
        try:
            with LogLines().installed() as log:
                started = time.monotonic()
                async with (
                    local_node(bots, "node-a", port, **FLEET) as a,
                    local_node(bots, "node-b", port, secret=None, **FLEET) as b,
                ):
                    assert time.monotonic() - started < 4, "a node must start while Redis is unreachable"
                    await _scenario(tmp_path, port, a, b, bots, db, log, procs)
        finally:
            await db.aclose()
            for proc in procs:
                os.kill(proc.pid, signal.SIGCONT) if proc.poll() is None else None
                await stop_process(proc)

    asyncio.run(asyncio.wait_for(main(), 120))


async def _scenario(
    tmp: Path, port: int, a: LocalNode, b: LocalNode, bots: EchoBots, db: aioredis.Redis, log: LogLines,
    procs: list[object],
) -> None:  # fmt: skip
    # 1. Redis unreachable from the start.
    await _outcomes_while_down(a, b, bots, log, 10)
    assert len(log.matching("! fleet command channel failed (redis: ")) == 2  # once per node, not per retry
    beats = "! fleet heartbeat failed"
    await eventually(lambda: _true(len(log.matching(beats)) == 2), "both nodes' heartbeats failing", timeout=5)

    # 2. Redis comes up: the nodes recover by themselves, bounded.
    redis_proc = await start_redis(tmp, port)
    procs.append(redis_proc)
    await eventually(lambda: _subscribed(db, a, b), "both nodes subscribed to their command channels")
    assert len(log.matching("= fleet command channel restored after")) == 2
    restored = "= fleet heartbeat restored after"
    await eventually(lambda: _true(len(log.matching(restored)) == 2), "both nodes' heartbeats restored", timeout=5)
    live_sid = _sid(1)
    live = asyncio.create_task(_admitted_call(a, live_sid, [WaitForBotAudio(timeout=80), Silence(0.5), HangUp()]))
    await asyncio.wait_for(bots.started(live_sid).wait(), 10)
    live_started = time.monotonic()
    assert await db.hexists("phonewire:calls", f"twilio:{live_sid}")

    # 3. Redis dies mid-call (SIGKILL): new calls refused fast; the live call goes on.
    await stop_process(redis_proc)
    procs.remove(redis_proc)
    await _outcomes_while_down(a, b, bots, log, 20)
    # once per node at start, once per node now
    await eventually(lambda: _true(len(log.matching(beats)) == 4), "both nodes' heartbeats failing", timeout=5)

    # 4. Redis back on the same port, empty (no persistence) - then frozen (SIGSTOP): only the
    #    timeouts can tell a stopped Redis from a slow one.
    redis_proc = await start_redis(tmp, port)
    procs.append(redis_proc)
    await eventually(lambda: _subscribed(db, a, b), "both nodes resubscribed")
    os.kill(redis_proc.pid, signal.SIGSTOP)
    try:
        await _outcomes_while_down(a, b, bots, log, 30)
    finally:
        os.kill(redis_proc.pid, signal.SIGCONT)

    # 5. Recovery: the heartbeat puts the live call back in the (restarted) registry ...
    async def live_call_registered() -> bool:
        return bool(await db.hexists("phonewire:calls", f"twilio:{live_sid}"))

    await eventually(live_call_registered, "the live call's lease re-added by the heartbeat", timeout=5)
    assert int(await db.zcard("phonewire:leases")) >= 1
    # ... new calls are admitted on both nodes ...
    for node, sid in ((a, _sid(40)), (b, _sid(41))):
        report = await _admitted_call(node, sid, [Silence(0.3), HangUp()])
        assert report.completed and report.close_code not in (1008, 1013), report.render_text()
        assert bots.started(sid).is_set()
    # ... and a command sent through node-b reaches the call on node-a over pub/sub.
    await eventually(lambda: _subscribed(db, a, b), "both nodes resubscribed")
    answer = await b.post(f"/fleet/calls/twilio/{live_sid}/say", {"text": "still here"})
    assert answer.status_code == 200 and answer.json() == {"ok": True, "node": "node-a"}, answer.text

    # The live call, through all of it: completed by the caller, every packet echoed.
    report = await asyncio.wait_for(live, 15)
    lived = time.monotonic() - live_started
    assert report.completed and report.close_code == 1000 and not report.errors, report.render_text()
    assert report.duration_s > lived - 1, (report.duration_s, lived)
    assert report.audio_received_s >= report.audio_sent_s - 0.5, report.render_text()
    # An echo has no lead to hide jitter, so a loop shared with the test (on a busy machine)
    # shows tens of ms of gaps; one wait on a Redis timeout (0.5 s) or on the frozen Redis
    # (seconds) would show more than that in a single gap.
    assert report.underrun_gap_ms < 1000 * FLEET["redis_timeout_secs"], report.render_text()
    assert not report.protocol_violations, report.render_text()

    async def released() -> bool:
        return not await db.hexists("phonewire:calls", f"twilio:{live_sid}")

    await eventually(released, "the live call's lease released at its end")
    await eventually(lambda: _true(log.matching(f"[twilio {live_sid}] = call ended")), "the call's summary line")
    assert not log.matching(f"[twilio {live_sid}] !"), log.matching(f"[twilio {live_sid}]")  # no error on the call
    # Each outage told once per node (not per retry), and its end too; the frozen Redis is
    # met by a heartbeat only if one fell in those ~1.5 s.
    failed, restored = log.matching("! fleet heartbeat failed"), log.matching("= fleet heartbeat restored after")
    assert 4 <= len(failed) <= 6 and len(restored) == len(failed), log.matching("fleet heartbeat")


async def _true(value: object) -> bool:
    return bool(value)
