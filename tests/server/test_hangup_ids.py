"""Issue 11 finding 4: ids from a start message reach a REST URL only in their provider's format.

A stream with a valid token (so it is verified and hang-up is allowed) but a crafted
``accountSid`` once made the server POST to a path naming another call. Now the id is
refused, no request is made, the refusal is logged and counted, and the call itself goes on.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from websockets.exceptions import ConnectionClosed

from phonewire.audio.analysis import tone
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.serializers._ids import TWILIO_ACCOUNT_SID
from phonewire.server import ServerConfig, create_app
from phonewire.telephony.signatures import twilio_signature
from phonewire.telephony.tokens import StreamTokenSigner
from support.bots import KeypadBot
from support.server_harness import serve
from support.wire import ACCOUNT_SID, CALL_SID, STREAM_SID, WireClient

SECRET = "s" * 40
AUTH_TOKEN = "tok"
VICTIM = "CA" + "9" * 32


def fake_api() -> tuple[FastAPI, list[dict[str, str]]]:
    app, seen = FastAPI(), []

    @app.post("/2010-04-01/Accounts/{account}/Calls/{call}.json")
    async def hangup(account: str, call: str, request: Request) -> Response:
        seen.append({"account": account, "call": call, "query": request.url.query})
        return Response("{}", media_type="application/json")

    return app, seen


def keypad_server(api_host: str, **twilio_kwargs: Any) -> FastAPI:
    async def bot(transport: Any, call: Any) -> None:
        task = PipelineTask(Pipeline([transport.input(), KeypadBot(tone(300, 0.2, 24000)), transport.output()]))
        await PipelineRunner(handle_sigint=False).run(task)

    kwargs = {"auth_token": AUTH_TOKEN, "base_url": f"http://{api_host}", **twilio_kwargs}
    config = ServerConfig(stream_secret=SECRET, twilio_auth_token=AUTH_TOKEN, serializer_kwargs={"twilio": kwargs})
    return create_app(bot, config)


async def token_for(hostport: str, call_sid: str, account_sid: str) -> str:
    """A token for the crafted account, so the token (bound to the account) passes: this tests
    the hang-up layer on its own. A well-formed account comes from a correctly signed
    webhook; a crafted one is minted directly, since the webhook itself now refuses to mint
    for an AccountSid that is not Twilio's format (the layer before this one)."""
    if not TWILIO_ACCOUNT_SID.fullmatch(account_sid):
        return StreamTokenSigner(SECRET).mint(call_sid, provider="twilio", account=account_sid)
    url = f"http://{hostport}/webhooks/twilio"
    form = {"CallSid": call_sid, "AccountSid": account_sid}
    headers = {"X-Twilio-Signature": twilio_signature(url, form, AUTH_TOKEN)}
    async with httpx.AsyncClient() as http:
        body = (await http.post(url, data=form, headers=headers)).text
    match = re.search(r'name="phonewireToken" value="([^"]+)"', body)
    assert match, body
    return match.group(1)


async def verified_call(hostport: str, account_sid: str) -> int | None:
    """A stream with a genuine token for CALL_SID, any accountSid; presses # to end the call."""
    token = await token_for(hostport, CALL_SID, account_sid)
    client = await WireClient.connect(hostport, respond=False)
    start = {
        "accountSid": account_sid,
        "streamSid": STREAM_SID,
        "callSid": CALL_SID,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"phonewireToken": token},
    }
    await client.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    await client.send(json.dumps({"event": "start", "sequenceNumber": "1", "start": start, "streamSid": STREAM_SID}))
    try:
        await client.dtmf("#")
        async with asyncio.timeout(5):
            while True:
                await client.ws.recv()
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None
    finally:
        await client.close()


def run(start_account: str, **twilio_kwargs: Any) -> tuple[int | None, list[dict[str, str]], str]:
    async def main() -> tuple[int | None, list[dict[str, str]], str]:
        api, seen = fake_api()
        async with serve(api) as api_host, serve(keypad_server(api_host, **twilio_kwargs)) as hostport:
            code = await verified_call(hostport, start_account)
            async with httpx.AsyncClient() as http:
                metrics = (await http.get(f"http://{hostport}/metrics")).text
        return code, seen, metrics

    return asyncio.run(main())


@pytest.mark.parametrize(
    "account_sid",
    [
        f"{ACCOUNT_SID}/Calls/{VICTIM}.json?x=",  # the reviewed attack
        f"{ACCOUNT_SID}/Calls/{VICTIM}.json#",
        "../../Accounts/" + ACCOUNT_SID,
        urllib.parse.quote(f"{ACCOUNT_SID}/Calls/{VICTIM}.json?x=", safe=""),
    ],
)
def test_a_crafted_account_sid_makes_no_rest_call_and_the_call_goes_on(
    account_sid: str, caplog: pytest.LogCaptureFixture
) -> None:
    code, seen, metrics = run(account_sid)
    assert code == 1000  # the bot ran and ended the call normally
    assert seen == []
    assert "phonewire_hangup_invalid_ids_total 1" in metrics
    assert "auto hang-up skipped (invalid account_sid" in caplog.text
    assert VICTIM not in caplog.text  # the peer's value is not echoed


def test_a_well_formed_account_sid_is_hung_up_as_before() -> None:
    code, seen, metrics = run(ACCOUNT_SID)
    assert code == 1000
    assert seen == [{"account": ACCOUNT_SID, "call": CALL_SID, "query": ""}]
    assert "phonewire_hangup_invalid_ids_total 0" in metrics


def test_a_configured_account_sid_wins_over_the_start_message() -> None:
    configured = "AC" + "c" * 32
    code, seen, _ = run(f"{ACCOUNT_SID}/Calls/{VICTIM}.json?x=", account_sid=configured)
    assert code == 1000
    assert seen == [{"account": configured, "call": CALL_SID, "query": ""}]
