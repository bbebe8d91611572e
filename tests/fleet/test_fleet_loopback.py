"""The loopback fleet test: Redis, three ``phonewire serve`` nodes and nginx in front.

Shows, with real processes: a stream token spent on one node is refused on another; the
fleet limit (``--max-fleet-calls 2``) holds across nodes, also for a stream sent straight to
the node that has room; a hang-up command sent to node A ends a call served by node B; and a
draining node's call finishes while new calls through nginx go to the other nodes.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from fleet_harness import Fleet, needs_fleet_binaries, running_fleet

from phonewire.testing import CallReport, FakeProviderAPI, HangUp, Silence, TwilioClient, simulate_call
from support.signed_webhooks import ACCOUNT_SID

pytestmark = needs_fleet_binaries


def _sid(n: int) -> str:
    return "CA" + f"{n:032d}"


async def _call(fleet: Fleet, url: str, sid: str, secs: float, *, api: FakeProviderAPI | None = None,
                hang_up: bool = False, token: str | None = None) -> CallReport:  # fmt: skip
    token = token or await fleet.token(sid)
    client = TwilioClient(account_sid=ACCOUNT_SID, call_sid=sid, custom_parameters={"phonewireToken": token})
    script = [Silence(secs), HangUp()] if hang_up else [Silence(secs)]
    return await simulate_call(url, provider=client, script=script, max_duration_s=secs + 15, api=api)


async def _token_spent_on_one_node_is_refused_on_another(fleet: Fleet) -> None:
    a, b = fleet.nodes[0], fleet.nodes[1]
    token = await fleet.token(_sid(1))
    first = await _call(fleet, a.ws, _sid(1), 0.5, hang_up=True, token=token)
    assert first.completed and first.close_code != 1008, first.render_text()
    replay = await _call(fleet, b.ws, _sid(1), 0.5, hang_up=True, token=token)
    assert replay.close_code == 1008, replay.render_text()
    assert "stream token rejected: replayed" in b.log.read_text()


async def _fleet_limit_holds_across_nodes(fleet: Fleet) -> None:
    n1, n2, n3 = fleet.nodes
    await fleet.wait_calls(lambda calls: not calls)  # the previous section's call has released its lease
    held = [asyncio.create_task(_call(fleet, n.ws, _sid(10 + i), 30)) for i, n in enumerate((n1, n2))]
    await fleet.wait_calls(lambda calls: len(calls) == 2)
    direct = await _call(fleet, n3.ws, _sid(20), 1, hang_up=True)  # node-3 has no call of its own
    through_lb = await _call(fleet, fleet.ws, _sid(21), 1, hang_up=True)
    assert direct.close_code == 1013, direct.render_text()
    assert through_lb.close_code == 1013, through_lb.render_text()
    assert "fleet limit max_fleet_calls" in n3.log.read_text()
    # A command from node-3 (which holds neither call) ends both calls, on node-1 and node-2.
    for i in range(2):
        answer = await fleet.api(n3, "POST", f"/fleet/calls/twilio/{_sid(10 + i)}/hangup")
        assert answer.status_code == 200 and answer.json()["ok"], answer.text
        assert answer.json()["node"] == f"node-{i + 1}", answer.json()
    reports = await asyncio.gather(*held)
    for report in reports:
        assert report.close_code == 1000 and report.duration_s < 15, report.render_text()
    await fleet.wait_calls(lambda calls: not calls)


async def _command_from_a_ends_a_call_on_b(fleet: Fleet, api: FakeProviderAPI) -> None:
    call = asyncio.create_task(_call(fleet, fleet.ws, _sid(30), 30, api=api))
    calls = await fleet.wait_calls(lambda calls: len(calls) == 1)
    owner = str(calls[0]["node"])
    other = next(n for n in fleet.nodes if n.name != owner)
    started = time.monotonic()
    answer = await fleet.api(other, "POST", f"/fleet/calls/twilio/{_sid(30)}/hangup", {"text": "goodbye"})
    assert answer.status_code == 200 and answer.json() == {"ok": True, "node": owner}, answer.text
    report = await call
    assert report.hangup == "rest" and time.monotonic() - started < 10, report.render_text()
    assert api.hangups(_sid(30)), "the owner node hung up through the provider's REST API"
    missing = await fleet.api(other, "POST", f"/fleet/calls/twilio/{_sid(30)}/say", {"text": "hi"})
    assert missing.status_code == 404
    unauthorised = await fleet.api(other, "GET", "/fleet/calls")
    assert unauthorised.status_code == 200
    async with __import__("httpx").AsyncClient() as http:
        assert (await http.get(f"{other.base}/fleet/calls")).status_code == 401


async def _drained_node_finishes_while_new_calls_go_elsewhere(fleet: Fleet) -> None:
    victim = fleet.nodes[2]
    ongoing = asyncio.create_task(_call(fleet, victim.ws, _sid(40), 4, hang_up=True))
    await fleet.wait_calls(lambda calls: any(c["node"] == victim.name for c in calls))
    victim.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while await fleet.ready(victim):  # the LB's health check: /readyz turns 503
        assert time.monotonic() < deadline, "the drained node stayed ready"
        await asyncio.sleep(0.05)
    await fleet.route_to([n for n in fleet.nodes if n is not victim])
    refused = await _call(fleet, victim.ws, _sid(41), 1, hang_up=True)
    assert refused.close_code == 1013, refused.render_text()  # a stream that still reaches it
    for i in range(4):  # one at a time: with the draining call that is the fleet limit (2)
        await fleet.wait_calls(lambda calls: len(calls) <= 1)  # the previous call's lease released
        report = await _call(fleet, fleet.ws, _sid(50 + i), 0.3, hang_up=True)
        assert report.completed and report.close_code != 1013, report.render_text()
    report = await ongoing
    assert report.completed, report.render_text()  # finished by the caller, not cut off
    assert await asyncio.to_thread(victim.proc.wait, 20) in (0, 143)  # 143: SIGTERM, after the drain
    assert "drained in" in victim.log.read_text()
    log = "".join(n.log.read_text() for n in fleet.nodes[:2])
    assert all(f"[twilio {_sid(50 + i)}] = call started" in log for i in range(4)), log[-3000:]


def test_fleet_on_loopback_behind_nginx(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeProviderAPI() as api:
            extra = ("--max-fleet-calls", "2", "--drain-timeout", "15")
            async with asyncio.timeout(90), running_fleet(tmp_path, extra=extra, api_base=api.base_url) as fleet:
                await _token_spent_on_one_node_is_refused_on_another(fleet)
                await _fleet_limit_holds_across_nodes(fleet)
                await _command_from_a_ends_a_call_on_b(fleet, api)
                await _drained_node_finishes_while_new_calls_go_elsewhere(fleet)

    asyncio.run(main())
