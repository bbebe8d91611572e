"""Interruption, DTMF, marks, stop, timeouts, disconnects and hang-up through a real server."""

from __future__ import annotations

import asyncio
import base64
import time
import urllib.parse
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from starlette.websockets import WebSocketState

from phonewire.audio.analysis import dominant_frequency, tone
from phonewire.frames import BotStoppedSpeakingFrame, FrameDirection, InputDTMFFrame, PlaybackSource
from support.bots import KeypadBot
from support.echo_app import make_app
from support.server_harness import serve
from support.wire import ACCOUNT_SID, CALL_SID, WireClient


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_an_interruption_sends_clear_before_any_further_audio() -> None:
    async def main() -> None:
        app, calls = make_app(bot=lambda call: KeypadBot(tone(300, 3.0, 24000)))
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, respond=False)
            await client.handshake()
            await client.dtmf("1")
            await client.recv_event("media")
            await asyncio.sleep(0.3)  # let the bot talk for a while: the thing under test is the clear
            await client.dtmf("*")
            await client.recv_event("clear", timeout=2.0)
            after = await client.collect_media(0.5)
            await client.close()
        assert after == []
        stats = calls[0].transport.stats
        assert stats.clears_sent == 1
        assert stats.dropped_audio_ms > 1500
        stopped = [f for f, d in calls[0].tail if isinstance(f, BotStoppedSpeakingFrame)]
        assert stopped and stopped[0].interrupted
        assert 200 < stopped[0].heard_ms < 1200

    run(main())


def test_dtmf_digits_reach_the_bot_as_input_dtmf_frames() -> None:
    async def main() -> list[str]:
        app, calls = make_app(bot=lambda call: KeypadBot(b""))
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, respond=False)
            await client.handshake()
            for digit in "42*#":
                await client.dtmf(digit)
            await calls[0].wait_finished(5)
            await client.close()
        return [f.button.value for f, _ in calls[0].frames if isinstance(f, InputDTMFFrame)]

    assert run(main()) == ["4", "2", "*", "#"]


def test_a_mark_echo_becomes_bot_stopped_speaking_from_the_provider() -> None:
    async def main() -> None:
        app, calls = make_app(bot=lambda call: KeypadBot(tone(300, 0.4, 24000)))
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, respond=False)
            await client.handshake()
            await client.dtmf("1")
            mark = await client.recv_event("mark")  # the utterance's final mark, after its audio
            await client.mark_echo(mark["mark"]["name"])
            await calls[0].wait_until(lambda c: any(isinstance(f, BotStoppedSpeakingFrame) for f, _ in c.tail))
            stopped = [f for f, _ in calls[0].tail if isinstance(f, BotStoppedSpeakingFrame)]
            await client.close()
        assert stopped
        assert stopped[0].source is PlaybackSource.PROVIDER_ACK
        assert not stopped[0].interrupted
        assert abs(stopped[0].sent_ms - 400) < 25

    run(main())


def test_twilio_stop_ends_the_pipeline_and_fires_disconnect_once() -> None:
    async def main() -> None:
        app, calls = make_app(
            handlers=("on_client_connected", "on_client_disconnected"), on_transport=_cancel_on_disconnect
        )
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, respond=False)
            await client.handshake()
            await client.media(tone(440, 0.02, 8000))
            await client.stop()
            await calls[0].wait_finished(5)
            await client.close()
        names = [e[0] for e in calls[0].events]
        assert names.count("on_client_connected") == 1
        assert names.count("on_client_disconnected") == 1
        assert calls[0].events[0][1] is calls[0].transport
        assert calls[0].events[0][2] is calls[0].transport.websocket

    run(main())


def _cancel_on_disconnect(call: Any) -> None:
    @call.transport.event_handler("on_client_disconnected")
    async def _(transport: Any, websocket: Any) -> None:
        await call.task.cancel()


@pytest.mark.parametrize("raw", [False, True], ids=["starlette", "raw-asgi"])
def test_a_disconnect_with_no_handler_cancels_the_pipeline_and_leaves_nothing_running(raw: bool) -> None:
    async def main() -> None:
        app, calls = make_app(raw_channel=raw)
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, respond=False)
            await client.handshake()
            await client.media(tone(440, 0.02, 8000))
            await client.recv_event("media")
            await client.close()
            await calls[0].wait_finished(5)
            transport = calls[0].transport
            assert transport.closed and transport.stats.close_reason == "client disconnected"
            assert (transport.raw_receive is not None) is raw
            assert transport.websocket.client_state == WebSocketState.DISCONNECTED  # either way
            assert not transport._tasks and all(t.done() for t in transport._timers)
            leftovers = [t for t in asyncio.all_tasks() if "phonewire" in repr(t.get_coro()) and not t.done()]
        assert calls[0].task.has_finished()
        assert leftovers == []

    run(main())


def test_session_timeout_fires_its_event_once_with_transport_and_websocket() -> None:
    async def main() -> None:
        app, calls = make_app(params={"session_timeout": 0.3}, handlers=("on_client_connected", "on_session_timeout"))
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, respond=False)
            await client.handshake()
            t0 = time.monotonic()
            await calls[0].wait_until(lambda c: any(e[0] == "on_session_timeout" for e in c.events), 3)
            elapsed = time.monotonic() - t0
            await asyncio.sleep(0.4)
            await client.close()
        assert 0.25 < elapsed < 1.0
        assert [e[0] for e in calls[0].events].count("on_session_timeout") == 1

    run(main())


def test_session_timeout_with_no_handler_ends_the_call() -> None:
    async def main() -> None:
        app, calls = make_app(params={"session_timeout": 0.3})
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, respond=False)
            await client.handshake()
            await calls[0].wait_finished(5)
            await client.close()
        assert calls[0].task.has_finished()

    run(main())


def fake_twilio_api(status: int = 200, body: bytes = b'{"status":"completed"}', delay: float = 0.0):
    app = FastAPI()
    seen: list[dict[str, Any]] = []

    @app.post("/2010-04-01/Accounts/{account}/Calls/{call}.json")
    async def hangup(account: str, call: str, request: Request) -> Response:
        form = dict(urllib.parse.parse_qsl((await request.body()).decode()))
        seen.append({"account": account, "call": call, "auth": request.headers.get("authorization"), "form": form})
        if delay:
            await asyncio.sleep(delay)
        return Response(body, status_code=status, media_type="application/json")

    return app, seen


def test_hang_up_reaches_the_rest_api_with_basic_auth_and_status_completed() -> None:
    async def main() -> list[dict[str, Any]]:
        api, seen = fake_twilio_api()
        async with serve(api) as api_host:
            kwargs = {"auth_token": "secret-token", "base_url": f"http://{api_host}"}
            app, calls = make_app(bot=lambda call: KeypadBot(tone(300, 0.3, 24000)), serializer_kwargs=kwargs)
            async with serve(app) as hostport:
                client = await WireClient.connect(hostport, respond=False)
                await client.handshake()
                await client.dtmf("1")
                await client.dtmf("#")
                await calls[0].wait_finished(8)
                await client.close()
            assert calls[0].transport.stats.hangup == "done"
        return seen

    seen = run(main())
    assert len(seen) == 1
    assert seen[0]["account"] == ACCOUNT_SID and seen[0]["call"] == CALL_SID
    assert seen[0]["auth"] == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:secret-token".encode()).decode()
    assert seen[0]["form"] == {"Status": "completed"}


def test_a_call_already_gone_counts_as_hung_up_and_a_slow_api_never_blocks_shutdown() -> None:
    async def main(status: int, delay: float) -> tuple[str | None, float, int]:
        api, seen = fake_twilio_api(status=status, body=b'{"code":20404}', delay=delay)
        async with serve(api) as api_host:
            kwargs = {"auth_token": "t", "base_url": f"http://{api_host}"}
            app, calls = make_app(
                bot=lambda call: KeypadBot(b""), serializer_kwargs=kwargs, params={"hangup_timeout_secs": 0.5}
            )
            async with serve(app) as hostport:
                client = await WireClient.connect(hostport, respond=False)
                await client.handshake()
                t0 = time.monotonic()
                await client.dtmf("#")
                await calls[0].wait_finished(10)
                elapsed = time.monotonic() - t0
                await client.close()
            return calls[0].transport.stats.hangup, elapsed, len(seen)

    outcome, _, attempts = run(main(404, 0.0))
    assert outcome == "already_ended" and attempts == 1
    outcome, elapsed, attempts = run(main(200, 3.0))
    assert outcome in (None, "retry") and attempts == 2  # one retry after the first timeout
    assert elapsed < 5.0


def test_malformed_messages_are_counted_and_the_call_keeps_working() -> None:
    async def main() -> None:
        app, calls = make_app()
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, respond=False)
            await client.handshake()
            for bad in [
                "{not json",
                '{"event":"bogus"}',
                '{"event":"media","media":{"payload":"***"}}',
                b"\x00\x01binary",
                '{"event":"media","streamSid":"MZother","media":{"payload":"AA=="}}',
                '{"event":"dtmf","dtmf":{"digit":"Z"}}',
                "[1,2,3]",
                '{"event":"media"}',
            ]:
                await client.send(bad)
            sender = asyncio.create_task(client.stream_audio(tone(440, 0.5, 8000)))
            packets = await client.collect_media(3.0, until_silence=0.5)
            await sender
            await client.close()
        audio = b"".join(p for _, p in packets)
        assert abs(dominant_frequency(audio, 8000) - 440) < 5
        assert calls[0].transport.stats.protocol_error_count == 8
        assert calls[0].transport.stats.internal_errors == 0

    run(main())


def test_media_before_start_is_counted_as_a_protocol_error_and_the_call_still_works() -> None:
    async def main() -> tuple[int, bytes]:
        app, calls = make_app()
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, respond=False)
            await client.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            await client.media(tone(440, 0.02, 8000))  # before start: Twilio never does this
            await client.handshake()
            sender = asyncio.create_task(client.stream_audio(tone(440, 0.4, 8000)))
            packets = await client.collect_media(3.0, until_silence=0.5)
            await sender
            await client.close()
        return calls[0].transport.stats.protocol_errors["message before start"], b"".join(p for _, p in packets)

    errors, audio = run(main())
    assert errors == 1
    assert abs(dominant_frequency(audio, 8000) - 440) < 5


def test_frames_from_the_input_reach_the_pipeline_in_order() -> None:
    async def main() -> list[str]:
        app, calls = make_app(bot=lambda call: KeypadBot(b""))
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, respond=False)
            await client.handshake()
            await client.media(tone(440, 0.02, 8000))
            await client.dtmf("5")
            await client.dtmf("#")
            await calls[0].wait_finished(5)
            await client.close()
        return [type(f).__name__ for f, d in calls[0].frames if d is FrameDirection.DOWNSTREAM][:5]

    assert run(main())[:2] == ["StartFrame", "ClientConnectedFrame"]
