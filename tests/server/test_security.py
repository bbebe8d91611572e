"""Stream authentication and limits on the ready-made server, through real sockets."""

from __future__ import annotations

import asyncio
import base64
import re
import urllib.parse
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from websockets.exceptions import ConnectionClosed

from phonewire.audio.analysis import tone
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.server import ServerConfig, create_app
from phonewire.telephony.signatures import twilio_signature
from support.bots import KeypadBot
from support.server_harness import serve
from support.signed_webhooks import TWILIO_TOKEN, signed_answer
from support.wire import ACCOUNT_SID, CALL_SID, WireClient, twilio

SECRET = "s" * 40


def fake_api() -> tuple[FastAPI, list[dict[str, Any]]]:
    app, seen = FastAPI(), []

    @app.post("/2010-04-01/Accounts/{account}/Calls/{call}.json")
    async def hangup(account: str, call: str, request: Request) -> Response:
        seen.append({"call": call, "form": dict(urllib.parse.parse_qsl((await request.body()).decode()))})
        return Response("{}", media_type="application/json")

    return app, seen


def keypad_server(api_host: str, **overrides: Any) -> FastAPI:
    async def bot(transport: Any, call: Any) -> None:
        task = PipelineTask(Pipeline([transport.input(), KeypadBot(tone(300, 0.2, 24000)), transport.output()]))
        await PipelineRunner(handle_sigint=False).run(task)

    config = ServerConfig(
        stream_secret=SECRET,
        twilio_auth_token=TWILIO_TOKEN,
        serializer_kwargs={"twilio": {"auth_token": "tok", "base_url": f"http://{api_host}"}},
        **overrides,
    )
    return create_app(bot, config)


async def twiml_token(hostport: str, call_sid: str = CALL_SID) -> str:
    form = {"CallSid": call_sid, "AccountSid": ACCOUNT_SID, "From": "+1555"}
    async with httpx.AsyncClient() as http:
        body = (await signed_answer(http, f"http://{hostport}", "twilio", form)).text
    match = re.search(r'name="phonewireToken" value="([^"]+)"', body)
    assert match, body
    return match.group(1)


async def call_and_hang_up(hostport: str, custom: dict[str, str]) -> int | None:
    """Make a call that presses #; returns the close code the server used."""
    client = await WireClient.connect(hostport, twilio(custom), respond=False)
    await client.handshake()
    try:
        await client.dtmf("#")
        async with asyncio.timeout(5):
            while True:
                await client.ws.recv()
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None
    finally:
        await client.close()


def test_a_verified_stream_is_served_and_its_hang_up_reaches_the_api() -> None:
    async def main() -> tuple[int | None, list[dict[str, Any]]]:
        api, seen = fake_api()
        async with serve(api) as api_host, serve(keypad_server(api_host)) as hostport:
            token = await twiml_token(hostport)
            code = await call_and_hang_up(hostport, {"phonewireToken": token})
        return code, seen

    code, seen = asyncio.run(main())
    assert code == 1000
    assert seen == [{"call": CALL_SID, "form": {"Status": "completed"}}]


def test_a_forged_stream_is_refused_and_triggers_no_rest_call() -> None:
    async def main() -> tuple[list[int | None], list[dict[str, Any]]]:
        api, seen = fake_api()
        async with serve(api) as api_host, serve(keypad_server(api_host)) as hostport:
            other = await twiml_token(hostport, call_sid="CA" + "5" * 32)
            codes = [
                await call_and_hang_up(hostport, custom)
                for custom in ({}, {"phonewireToken": "garbage"}, {"phonewireToken": other})
            ]
        return codes, seen

    codes, seen = asyncio.run(main())
    assert codes == [1008, 1008, 1008]
    assert seen == []


def test_a_replayed_token_is_refused() -> None:
    async def main() -> list[int | None]:
        api, _ = fake_api()
        async with serve(api) as api_host, serve(keypad_server(api_host)) as hostport:
            token = await twiml_token(hostport)
            return [await call_and_hang_up(hostport, {"phonewireToken": token}) for _ in range(2)]

    assert asyncio.run(main()) == [1000, 1008]


def test_twilio_webhooks_need_a_valid_signature_when_the_auth_token_is_configured() -> None:
    async def main() -> tuple[int, int]:
        app = create_app(lambda t, c: asyncio.sleep(0), ServerConfig(twilio_auth_token="authtok", stream_secret=SECRET))
        async with serve(app) as hostport:
            url = f"http://{hostport}/webhooks/twilio"
            form = {"CallSid": "CA" + "9" * 32, "From": "+1"}
            good = twilio_signature(url, form, "authtok")
            async with httpx.AsyncClient() as http:
                bad = await http.post(
                    url, data=form, headers={"X-Twilio-Signature": base64.b64encode(b"x" * 20).decode()}
                )
                ok = await http.post(url, data=form, headers={"X-Twilio-Signature": good})
        return bad.status_code, ok.status_code

    assert asyncio.run(main()) == (403, 200)


def test_a_bad_upgrade_signature_is_refused_before_any_bot_runs() -> None:
    async def main() -> int | None:
        app = create_app(lambda t, c: asyncio.sleep(0), ServerConfig(twilio_auth_token="authtok"))
        async with serve(app) as hostport:
            try:
                client = await WireClient.connect(hostport, respond=False, headers={"X-Twilio-Signature": "AAAA"})
                await client.handshake()
                await client.ws.recv()
            except ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else None
            except Exception as exc:  # refused during the upgrade: HTTP 403
                return getattr(getattr(exc, "response", None), "status_code", None)
        return None

    assert asyncio.run(main()) in (403, 1008)
