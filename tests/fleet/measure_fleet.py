"""Redis round trips per call and the call-setup latency the fleet checks add (docs/benchmarks.md).

``python tests/fleet/measure_fleet.py``: one in-process server with a fleet on a real
redis-server, one without; the same signed calls on each; Redis's own INFO commandstats
counts the round trips, and each call's "webhook answered -> bot started" time is the
server's (``on_client_connected`` minus the stream's handshake start) as seen from the bot.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))
import httpx
import redis
from fleet_harness import REDIS, free_port

from phonewire.fleet import FleetConfig
from phonewire.server import ServerConfig, create_app
from phonewire.testing import HangUp, Silence, TwilioClient, simulate_call
from support.server_harness import serve
from support.signed_webhooks import ACCOUNT_SID, TWILIO_TOKEN, signed_answer

CALLS = 40
SETUP: list[float] = []


async def bot(transport: Any, call: Any) -> None:
    SETUP.append(time.monotonic() - transport.accepted_at)


def _commands(r: redis.Redis) -> int:
    stats = r.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if not k.endswith(("info", "config")))


TRIPS: list[int] = []


async def run(fleet: FleetConfig | None) -> list[float]:
    SETUP.clear()
    config = ServerConfig(vad=None, stream_secret="measure-secret-0123456789", twilio_auth_token=TWILIO_TOKEN,
                          fleet=fleet)  # fmt: skip
    app = create_app(bot, config)
    async with serve(app, lifespan="on") as hostport:
        for i in range(CALLS):
            sid = "CA" + f"{i:032d}"
            form = {"CallSid": sid, "AccountSid": ACCOUNT_SID, "From": "+1555", "To": "+1666"}
            async with httpx.AsyncClient() as http:
                body = (await signed_answer(http, f"http://{hostport}", "twilio", form)).text
            token = re.search(r'name="phonewireToken" value="([^"]+)"', body).group(1)  # type: ignore[union-attr]
            client = TwilioClient(account_sid=ACCOUNT_SID, call_sid=sid, custom_parameters={"phonewireToken": token})
            await simulate_call(f"ws://{hostport}/ws", provider=client, script=[Silence(0.04), HangUp()])
        if app.state.fleet is not None:
            TRIPS.append(app.state.fleet.redis.round_trips)
    return list(SETUP)


def main() -> None:
    import phonewire.server.app as app_module

    original = app_module._identify

    async def timed(websocket: Any, *args: Any) -> Any:  # stamp the handshake's start on the transport
        started = time.monotonic()
        result = await original(websocket, *args)
        if result is not None:
            result[0].accepted_at = started
        return result

    app_module._identify = timed  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        assert REDIS
        proc = subprocess.Popen([REDIS, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", tmp],
                                stdout=subprocess.DEVNULL)  # fmt: skip
        try:
            r = redis.Redis(port=port)
            for _ in range(100):
                try:
                    r.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            plain = asyncio.run(run(None))
            before = _commands(r)
            fleet = FleetConfig(redis_url=f"redis://127.0.0.1:{port}/0", max_fleet_calls=100, heartbeat_secs=10)
            with_fleet = asyncio.run(run(fleet))
            trips = _commands(r) - before
        finally:
            proc.kill()
            proc.wait(5)
    print(f"calls: {CALLS}; round trips (FleetRedis.run): {TRIPS[0]} ({TRIPS[0] / CALLS:.2f} per call)")
    print(f"redis commands executed (commandstats, incl. those inside scripts): {trips / CALLS:.1f} per call")
    for name, xs in (("without fleet", plain), ("with fleet", with_fleet)):
        xs = sorted(x * 1000 for x in xs)
        median, p95 = statistics.median(xs), xs[int(0.95 * len(xs))]
        print(f"{name}: handshake -> bot start median {median:.2f} ms, p95 {p95:.2f} ms")


if __name__ == "__main__":
    main()
