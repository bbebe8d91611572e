"""The call console: off unless a token is set; Basic or Bearer, constant-time; a snapshot
and pushed events that follow a call from start to end, with bounded history."""

from __future__ import annotations

import base64
from typing import Any

from fastapi.testclient import TestClient

from phonewire.serializers.base import CallInfo, MediaFormat
from phonewire.server import ServerConfig, create_app
from phonewire.server.call_events import CallEvents

TOKEN = "console-token-for-tests"


async def _bot(transport: Any, call: Any) -> None:
    return None


def _app(**overrides: Any) -> Any:
    return create_app(_bot, ServerConfig(vad=None, freeze_gc=False, **overrides))


def _basic(password: str, user: str = "ops") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_the_console_is_off_without_a_token() -> None:
    client = TestClient(_app(console_token=None))
    for path in ("/calls", "/calls/api", "/calls/events"):
        assert client.get(path).status_code == 404


def test_every_console_route_wants_the_token() -> None:
    client = TestClient(_app(console_token=TOKEN))
    for path in ("/calls", "/calls/api", "/calls/events"):
        refused = client.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"].startswith("Basic realm=")
        assert client.get(path, headers=_basic("wrong")).status_code == 401
        assert client.get(path, headers={"Authorization": "Basic !!!"}).status_code == 401
    assert client.get("/calls/api", headers=_basic(TOKEN)).status_code == 200
    assert client.get("/calls/api", headers=_basic(TOKEN, user="")).status_code == 200
    assert client.get("/calls/api", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    page = client.get("/calls", headers=_basic(TOKEN))
    assert "phonewire calls" in page.text and "frame-ancestors 'none'" in page.headers["content-security-policy"]


class _Stats:
    dtmf_in = 0


class _Transport:
    def __init__(self) -> None:
        self.stats = _Stats()


class _Call:
    def __init__(self, call_id: str, caller: str = "+15550100") -> None:
        self.info = CallInfo("twilio", call_id, None, MediaFormat("mulaw", 8000), from_number=caller)
        self.transport = _Transport()
        self.data: dict[Any, Any] = {}
        self.outcome: str | None = None


class _Turn:
    def __init__(self, index: int) -> None:
        self.index = index
        self.stages = {"vad_stop": 0.2, "transcript": 0.4, "turn_end": 0.41, "first_audio_heard": 0.9}
        self.heard_source = "provider_ack"
        self.interrupted = False


def test_a_call_is_listed_live_with_its_turns_then_as_ended() -> None:
    app = _app(console_token=TOKEN)
    events: CallEvents = app.state.call_events
    client = TestClient(app)
    call = _Call("CA1")
    events.call_started(call)
    view = call.data[events]
    events.speaking(view, "caller")
    events.said(view, "caller", "hi there")
    events.turn_completed(call, _Turn(1))
    live = client.get("/calls/api", headers=_basic(TOKEN)).json()
    (row,) = live["live"]
    assert row["caller"] == "+15550100" and row["turns"] == 1 and row["last_latency_ms"] == 900.0
    assert row["speaking"] == "caller" and row["live"] and row["transcript"][0]["text"] == "hi there"
    assert row["turn_list"][0]["stages"]["transcript"] == 400.0
    call.outcome = "caller_hung_up"
    call.transport.stats.dtmf_in = 2
    events.call_ended(call)
    after = client.get("/calls/api", headers=_basic(TOKEN)).json()
    assert after["live"] == []
    (ended,) = after["ended"]
    assert ended["outcome"] == "caller_hung_up" and ended["dtmf"] == 2 and not ended["live"]
    events.said(view, "bot", "too late")  # an ended call takes no more lines
    assert len(client.get("/calls/api", headers=_basic(TOKEN)).json()["ended"][0]["transcript"]) == 1


def test_ended_history_is_bounded() -> None:
    events = CallEvents(max_ended=3)
    for i in range(5):
        call = _Call(f"CA{i}")
        events.call_started(call)
        call.outcome = "completed"
        events.call_ended(call)
    assert [v.call_id for v in events.ended] == ["CA2", "CA3", "CA4"]
    assert events.live == {}


def test_events_are_pushed_to_each_subscriber_in_order() -> None:
    import asyncio

    async def run() -> list[str]:
        events = CallEvents()
        sub = events.subscribe()
        assert sub is not None
        call = _Call("CA9")
        events.call_started(call)
        events.turn_completed(call, _Turn(1))
        call.outcome = "completed"
        events.call_ended(call)
        sub.close()
        return [e["type"] async for e in sub.events(1.0) if e is not None]

    assert asyncio.run(run()) == []  # closing drops what was queued: a closed page resyncs


def test_events_reach_an_open_subscriber() -> None:
    import asyncio

    async def run() -> list[str]:
        events = CallEvents()
        sub = events.subscribe()
        assert sub is not None
        call = _Call("CA9")
        events.call_started(call)
        events.turn_completed(call, _Turn(1))
        call.outcome = "completed"
        events.call_ended(call)
        kinds = []
        async for event in sub.events(1.0):
            assert event is not None
            kinds.append(event["type"])
            if event["type"] == "ended":
                break
        return kinds

    assert asyncio.run(run()) == ["call", "turn", "ended"]
