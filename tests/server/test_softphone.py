"""The softphone's routes: off by default, never an open token source (key, origin, rate),
tokens single-use for a fresh call id, the side channel bound to its call, assets shipped."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient

from phonewire.exceptions import ConfigurationError
from phonewire.serializers.base import CallInfo, MediaFormat
from phonewire.server import ServerConfig, create_app
from phonewire.server.guard import check_stream_token
from phonewire.telephony.tokens import STREAM_TOKEN_PARAMETER, StreamTokenSigner

SECRET = "s" * 32
KEY = "softphone-key-for-tests"


async def _bot(transport: Any, call: Any) -> None:
    return None


def _client(**overrides: Any) -> TestClient:
    config = ServerConfig(stream_secret=SECRET, vad=None, freeze_gc=False, **overrides)
    return TestClient(create_app(_bot, config))


def _mint(client: TestClient, key: str | None = KEY, **headers: str) -> Any:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return client.post("/softphone/token", headers=headers)


def test_the_softphone_is_off_unless_enabled() -> None:
    client = _client()
    for path in ("/softphone", "/softphone/token", "/pages/static/softphone.js", "/calls"):
        assert client.get(path).status_code == 404, path
    assert client.post("/softphone/token").status_code == 404


def test_enabling_it_without_a_key_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigurationError, match="open source of stream tokens"):
        _client(softphone=True, softphone_token=None, console_token=None)


def test_the_page_is_served_with_a_strict_policy_and_its_assets_only_by_name() -> None:
    client = _client(softphone=True, softphone_token=KEY)
    page = client.get("/softphone")
    assert page.status_code == 200 and "phonewire softphone" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "http" not in page.text.replace('href="/', "").split("<body", 1)[0], "no outside URL in the head"
    for name in ("softphone.js", "capture-worklet.js", "playback-worklet.js", "sse.js", "chart.js", "pages.css"):
        assert client.get(f"/pages/static/{name}").status_code == 200, name
    for name in ("softphone.html", "..%2F__init__.py", "nope.js"):
        assert client.get(f"/pages/static/{name}").status_code == 404, name


def test_minting_needs_the_key_from_this_origin() -> None:
    client = _client(softphone=True, softphone_token=KEY)
    assert _mint(client, None).status_code == 401
    assert _mint(client, "wrong").status_code == 401
    assert client.post("/softphone/token", headers={"Authorization": f"Basic {KEY}"}).status_code == 401
    assert _mint(client, Origin="http://evil.example").status_code == 403
    assert _mint(client, Origin="http://testserver").status_code == 200


def test_a_minted_token_is_single_use_for_a_fresh_raw_pcm_call_id() -> None:
    client = _client(softphone=True, softphone_token=KEY)
    first, second = _mint(client).json(), _mint(client).json()
    assert first["call_id"] != second["call_id"] and first["call_id"].startswith("softphone-")
    assert first["token_parameter"] == STREAM_TOKEN_PARAMETER and first["ws_path"] == "/ws"
    assert _mint(client).headers["cache-control"] == "no-store"
    # The server's own signer (same secret) accepts it once, for that call id and raw_pcm only.
    signer = StreamTokenSigner(SECRET)

    def info(call_id: str, provider: str = "raw_pcm") -> CallInfo:
        params = {STREAM_TOKEN_PARAMETER: first["token"]}
        return CallInfo(provider, call_id, None, MediaFormat("l16", 16000), custom_parameters=params)

    assert check_stream_token(signer, info(second["call_id"]), required=True)[1] == (
        "stream token rejected: call id mismatch"
    )
    assert check_stream_token(signer, info(first["call_id"], "twilio"), required=True)[1] is not None
    assert check_stream_token(signer, info(first["call_id"]), required=True) == (True, None)
    assert check_stream_token(signer, info(first["call_id"]), required=True)[1] == "stream token rejected: replayed"


def test_minting_is_rate_limited_per_process() -> None:
    client = _client(softphone=True, softphone_token=KEY, softphone_mints_per_minute=3)
    codes = [_mint(client).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
    assert int(_mint(client).headers["retry-after"]) >= 1


def test_the_console_token_can_stand_in_for_the_softphone_key() -> None:
    client = _client(softphone=True, console_token="console-secret")
    assert _mint(client, "console-secret").status_code == 200


def test_the_side_channel_wants_the_calls_own_key() -> None:
    client = _client(softphone=True, softphone_token=KEY)
    grant, other = _mint(client).json(), _mint(client).json()
    path = grant["events_path"]
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {other['events_key']}"}).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {KEY}"}).status_code == 401
    assert client.get("/softphone/events/softphone-unknown", headers={"Authorization": "Bearer x"}).status_code == 401


def test_the_side_channel_streams_its_call_and_ends_with_it() -> None:
    """A call's events reach its page: a snapshot, the call, a turn, a transcript line, the end."""
    app = create_app(
        _bot, ServerConfig(stream_secret=SECRET, vad=None, freeze_gc=False, softphone=True, softphone_token=KEY)
    )
    events = app.state.call_events
    with TestClient(app) as client:
        grant = _mint(client).json()
        call = _FakeCall(grant["call_id"])
        events.call_started(call)
        view = call.data[events]
        events.said(view, "caller", "hello")
        events.turn_completed(call, _Turn())
        call.transport.stats.dtmf_in = 3
        events.call_ended(call)
        # Everything already happened: the snapshot holds it and the stream ends at once.
        body = client.get(grant["events_path"], headers={"Authorization": f"Bearer {grant['events_key']}"}).text
    assert '"type":"snapshot"' in body and '"hello"' in body and '"outcome":"caller_hung_up"' in body
    assert '"dtmf":3' in body and '"first_audio_heard":812.0' in body


class _Stats:
    dtmf_in = 0


class _Transport:
    stats = _Stats()


class _Turn:
    index = 1
    stages = {"vad_stop": 0.2, "transcript": 0.5, "first_audio_heard": 0.812}
    heard_source = "provider_ack"
    interrupted = False


class _FakeCall:
    def __init__(self, call_id: str) -> None:
        self.info = CallInfo("raw_pcm", call_id, None, MediaFormat("l16", 16000))
        self.transport = _Transport()
        self.data: dict[Any, Any] = {}
        self.outcome = "caller_hung_up"


def test_the_pages_are_package_resources() -> None:
    """They are read with importlib.resources from phonewire.server, which is what the wheel
    carries (hatch packages every file under src/phonewire; checked with pip wheel)."""
    from importlib import resources

    from phonewire.server.pages._common import STATIC_FILES

    static = resources.files("phonewire.server").joinpath("static")
    for name in {*STATIC_FILES, "softphone.html", "console.html"}:
        assert static.joinpath(name).is_file(), name


def test_a_slow_subscriber_is_dropped_not_buffered() -> None:
    from phonewire.server import call_events as ce

    async def run() -> None:
        events = ce.CallEvents()
        sub = events.subscribe()
        assert sub is not None
        call = _FakeCall("x")
        events.call_started(call)
        view = call.data[events]
        for i in range(ce.QUEUE_DEPTH + 5):
            events.said(view, "bot", f"line {i}")
        assert sub.closed and sub not in events._subscribers
        assert [e async for e in sub.events(1.0)] == []  # only the end marker was left
        assert len(view.transcript) == ce.MAX_LINES

    asyncio.run(run())
