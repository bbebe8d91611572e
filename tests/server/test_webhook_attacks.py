"""Issue 11: the review's webhook attacks, replayed against a real server on 127.0.0.1.

Each test names the finding it pins. Tokens in answers are checked with a signer built on the
same secret (a fresh replay store, so checking one does not spend it on the server).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from websockets.exceptions import ConnectionClosed

from phonewire.audio.analysis import tone
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.server import ServerConfig, create_app
from phonewire.telephony.tokens import StreamTokenError, StreamTokenSigner
from support.bots import KeypadBot
from support.server_harness import serve
from support.signed_webhooks import (
    ACCOUNT_SID,
    FORM,
    credentials,
    exotel_headers,
    form_body,
    plivo_headers,
    signed_answer,
    telnyx_headers,
    twilio_headers,
    vonage_jwt,
    vonage_query_payload,
)
from support.wire import CALL_SID, STREAM_SID, WireClient

SECRET = "a" * 40
GENUINE = "v3:genuine-call"
VICTIM = "v3:victim-call"
#: Ids in their providers' formats (the webhooks mint for nothing else).
CA1, CA2 = "CA" + "1" * 32, "CA" + "2" * 32
U_GENUINE = "11111111-1111-4111-8111-111111111111"
U_VICTIM = "99999999-9999-4999-8999-999999999999"
U_1, U_2 = "aaaaaaaa-0000-4000-8000-000000000001", "aaaaaaaa-0000-4000-8000-000000000002"


def tokens_check(token: str | None, call_id: str, provider: str, account: str = "") -> bool:
    try:
        StreamTokenSigner(SECRET).verify(token, call_id, provider=provider, account=account)
    except StreamTokenError:
        return False
    return True


def on_server(scenario: Callable[[httpx.AsyncClient, str], Awaitable[Any]], **config: Any) -> Any:
    async def main() -> Any:
        settings = {"stream_secret": SECRET, "public_host": "bot.example.com", **credentials(), **config}
        app = create_app(lambda t, c: asyncio.sleep(0), ServerConfig(**settings))
        async with serve(app) as hostport, httpx.AsyncClient(timeout=20) as http:
            return await scenario(http, f"http://{hostport}")

    return asyncio.run(main())


def xml_token(text: str) -> str | None:
    match = re.search(r'name="phonewireToken" value="([^"]+)"', text)
    return match.group(1) if match else None


def ncco_headers(response: httpx.Response) -> dict[str, str]:
    [connect] = response.json()
    return dict(connect["endpoint"][0]["headers"])


# --------------------------------------------------------------------------- finding 1: Telnyx


def telnyx_event(call_control_id: str) -> bytes:
    payload = {"call_control_id": call_control_id, "from": "+15550001", "to": "+15550002"}
    return json.dumps({"data": {"event_type": "call.initiated", "payload": payload}}).encode()


def test_finding1_a_captured_telnyx_webhook_with_a_victim_id_in_the_query_mints_no_victim_token() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> list[httpx.Response]:
        body = telnyx_event(GENUINE)  # any signed event of the account
        headers = {**telnyx_headers(body), "Content-Type": "application/json"}
        query = urllib.parse.urlencode({"CallControlId": VICTIM, "CallSid": VICTIM})
        return [await http.post(f"{base}/webhooks/telnyx?{query}", content=body, headers=headers)]

    [response] = on_server(scenario)
    token = xml_token(response.text)
    assert response.status_code == 200
    assert not tokens_check(token, VICTIM, "telnyx")
    assert tokens_check(token, GENUINE, "telnyx")  # the id the signed JSON body names


def test_finding1_a_telnyx_form_body_names_the_call_and_the_query_does_not() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> httpx.Response:
        body = form_body({"CallSid": GENUINE, "From": "+1"})
        headers = {**telnyx_headers(body), "Content-Type": FORM}
        return await http.post(f"{base}/webhooks/telnyx?CallControlId={VICTIM}", content=body, headers=headers)

    response = on_server(scenario)
    assert tokens_check(xml_token(response.text), GENUINE, "telnyx")


def test_finding1_a_telnyx_webhook_outside_its_window_or_badly_signed_is_refused() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> list[int]:
        body = telnyx_event(GENUINE)
        stale = telnyx_headers(body, timestamp=int(time.time()) - 301)
        forged = {**telnyx_headers(b"other body"), "Content-Type": "application/json"}
        return [
            (await http.post(f"{base}/webhooks/telnyx", content=body, headers=h)).status_code for h in (stale, forged)
        ]

    assert on_server(scenario) == [403, 403]


# --------------------------------------------------------------------------- finding 2: Vonage


def test_finding2_a_captured_vonage_get_jwt_resent_with_a_victim_uuid_is_refused() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> tuple[httpx.Response, httpx.Response]:
        genuine = {"uuid": U_GENUINE, "from": "447700900000", "to": "447700900001"}
        jwt = vonage_jwt(vonage_query_payload(genuine))
        auth = {"Authorization": f"Bearer {jwt}"}
        ok = await http.get(f"{base}/webhooks/vonage", params=genuine, headers=auth)
        attack = await http.get(f"{base}/webhooks/vonage", params={**genuine, "uuid": U_VICTIM}, headers=auth)
        return ok, attack

    ok, attack = on_server(scenario)
    assert ok.status_code == 200 and tokens_check(ncco_headers(ok)["phonewireToken"], U_GENUINE, "vonage")
    assert attack.status_code == 403 and "phonewireToken" not in attack.text


def test_finding2_a_vonage_get_jwt_that_covers_no_query_mints_nothing() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> httpx.Response:
        auth = {"Authorization": f"Bearer {vonage_jwt(None)}"}  # valid, fresh, but no payload_hash
        return await http.get(f"{base}/webhooks/vonage", params={"uuid": U_VICTIM}, headers=auth)

    response = on_server(scenario)
    assert response.status_code == 403 and "phonewireToken" not in response.text


def test_finding2_a_vonage_post_takes_ids_from_its_signed_json_body_not_the_query() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> tuple[httpx.Response, httpx.Response]:
        body = json.dumps({"uuid": U_GENUINE, "from": "447700900000", "to": "447700900001"}).encode()
        headers = {"Authorization": f"Bearer {vonage_jwt(body)}", "Content-Type": "application/json"}
        attack = await http.post(f"{base}/webhooks/vonage?uuid=victim-uuid", content=body, headers=headers)
        other_body = json.dumps({"uuid": U_VICTIM}).encode()
        swapped = await http.post(f"{base}/webhooks/vonage", content=other_body, headers=headers)
        return attack, swapped

    attack, swapped = on_server(scenario)
    headers = ncco_headers(attack)
    assert headers["call_uuid"] == U_GENUINE and headers["from_number"] == "447700900000"
    assert tokens_check(headers["phonewireToken"], U_GENUINE, "vonage")
    assert swapped.status_code == 403  # the JWT's payload_hash does not cover that body


def test_finding2_a_genuine_signed_vonage_json_post_mints_a_token() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> httpx.Response:
        return await signed_answer(http, base, "vonage", {"uuid": U_1, "from": "4477", "to": "4478"})

    response = on_server(scenario)
    assert response.status_code == 200
    assert tokens_check(ncco_headers(response)["phonewireToken"], U_1, "vonage")


def test_finding2_a_reused_vonage_jti_gets_the_same_token_back() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> list[str]:
        body = json.dumps({"uuid": U_2}).encode()
        headers = {"Authorization": f"Bearer {vonage_jwt(body, jti='jti-1')}", "Content-Type": "application/json"}
        responses = [await http.post(f"{base}/webhooks/vonage", content=body, headers=headers) for _ in range(2)]
        return [ncco_headers(r)["phonewireToken"] for r in responses]

    first, second = on_server(scenario)
    assert first == second


# --------------------------------------------------------------------------- finding 3: no open token source


def test_finding3_the_exotel_webhook_without_configured_credentials_is_refused() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> httpx.Response:
        return await http.get(f"{base}/webhooks/exotel", params={"CallSid": "ex1"})

    response = on_server(scenario, exotel_webhook_basic_auth=None)
    assert response.status_code == 404 and "phonewireToken" not in response.text


def test_finding3_the_exotel_webhook_needs_the_configured_basic_credentials() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> list[httpx.Response]:
        url = f"{base}/webhooks/exotel"
        params = {"CallSid": "ex1"}
        return [
            await http.get(url, params=params),
            await http.get(url, params=params, headers=exotel_headers("exotel-user:wrong")),
            await http.get(url, params=params, headers=exotel_headers()),
        ]

    missing, wrong, right = on_server(scenario)
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert "phonewireToken" not in missing.text + wrong.text
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(right.json()["url"]).query))
    assert tokens_check(query["phonewireToken"], "ex1", "exotel")


@pytest.mark.parametrize("provider", ["twilio", "telnyx", "plivo", "vonage", "exotel"])
def test_finding3_no_route_mints_a_token_without_a_verification_the_operator_configured(provider: str) -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> tuple[int, str, Any]:
        fields = {"CallSid": "x1", "CallControlId": "x1", "CallUUID": "x1", "uuid": "x1"}
        response = await signed_answer(http, base, provider, fields, method="GET" if provider == "exotel" else "POST")
        return response.status_code, response.text, None

    nothing = dict.fromkeys(credentials())
    status, text, _ = on_server(scenario, **nothing)
    assert status == 404 and "phonewireToken" not in text


# --------------------------------------------------------------------------- finding 5: bounded bodies


def test_finding5_a_10_mib_webhook_gets_413_while_healthz_keeps_answering() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> tuple[int, int, list[str]]:
        order: list[str] = []
        big = b"a=1&" * (10 * 1024 * 1024 // 4)

        async def flood() -> int:
            r = await http.post(f"{base}/webhooks/twilio", content=big, headers={"Content-Type": FORM})
            order.append("flood")
            return r.status_code

        async def health() -> int:
            r = await http.get(f"{base}/healthz")
            order.append("healthz")
            return r.status_code

        async with asyncio.timeout(10):  # generous: the point is the 413, not a wall-clock figure
            flood_status, health_status = await asyncio.gather(flood(), health())
        return flood_status, health_status, order

    flood_status, health_status, order = on_server(scenario)
    assert (flood_status, health_status) == (413, 200) and sorted(order) == ["flood", "healthz"]


def test_finding5_a_chunked_body_is_abandoned_at_the_cap_without_reading_the_rest() -> None:
    """ASGI-level: count how much of a 10 MiB chunked body the app pulls before answering."""
    app = create_app(lambda t, c: asyncio.sleep(0), ServerConfig(stream_secret=SECRET, **credentials()))
    chunk = b"a=1&" * 1024  # 4 KiB
    total = 10 * 1024 * 1024 // len(chunk)
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < total}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhooks/twilio",
        "raw_path": b"/webhooks/twilio",
        "query_string": b"",
        "headers": [(b"host", b"bot.example.com"), (b"content-type", FORM.encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert pulled <= 64 * 1024 // len(chunk) + 2  # the cap, not the 2560 chunks on offer


def test_finding5_more_form_fields_than_any_provider_sends_are_refused() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> int:
        body = b"&".join(b"a%d=1" % i for i in range(300))
        url = f"{base}/webhooks/twilio"
        return (await http.post(url, content=body, headers={"Content-Type": FORM})).status_code

    assert on_server(scenario) == 413


# --------------------------------------------------------------------------- finding 6: replays


def test_finding6_a_replayed_twilio_webhook_gets_the_same_token_and_a_new_call_a_new_one() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> list[str | None]:
        url = f"{base}/webhooks/twilio"
        tokens = []
        for sid in (CA1, CA1, CA2):
            form = {"CallSid": sid, "AccountSid": ACCOUNT_SID}
            response = await http.post(url, content=form_body(form), headers=twilio_headers(url, form))
            tokens.append(xml_token(response.text))
        return tokens

    first, replay, other = on_server(scenario, public_host=None)
    assert first is not None and replay == first and other not in (None, first)


def test_finding6_a_replayed_plivo_webhook_with_the_same_nonce_gets_the_same_token() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> list[str]:
        url = f"{base}/webhooks/plivo"
        form = {"CallUUID": U_1, "From": "+1"}
        tokens = []
        for nonce in ("n1", "n1", "n2"):
            headers = {**plivo_headers("POST", url, form, nonce=nonce), "Content-Type": FORM}
            response = await http.post(url, content=form_body(form), headers=headers)
            tokens.append(re.search(r"phonewireToken=([A-Za-z0-9_-]+)", response.text).group(1))  # type: ignore[union-attr]
        return tokens

    first, replay, fresh_nonce = on_server(scenario, public_host=None)
    assert replay == first and fresh_nonce != first


def test_finding6_a_replayed_telnyx_webhook_in_its_window_gets_the_same_token() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> list[str | None]:
        body = telnyx_event(GENUINE)
        headers = {**telnyx_headers(body), "Content-Type": "application/json"}
        return [
            xml_token((await http.post(f"{base}/webhooks/telnyx", content=body, headers=headers)).text)
            for _ in range(2)
        ]

    first, replay = on_server(scenario)
    assert first is not None and replay == first


# --------------------------------------------------------------------------- finding 7: injection


def test_finding7_separators_in_a_plivo_from_cannot_smuggle_extra_headers() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> httpx.Response:
        return await signed_answer(http, base, "plivo", {"CallUUID": U_1, "From": "+1;role=admin", "To": "+2,x=y"})

    response = on_server(scenario, public_host=None)
    extra = ET.fromstring(response.text).find("./Stream").get("extraHeaders", "")  # type: ignore[union-attr]
    keys = [pair.split("=", 1)[0] for pair in extra.split(";")]
    assert keys == ["phonewireToken"] and "role" not in extra


def test_finding7_control_characters_in_from_still_give_well_formed_twiml() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> httpx.Response:
        form = {"CallSid": CA1, "AccountSid": ACCOUNT_SID, "From": "+1\x01\x0b555\x7f", "To": "+1\ufffe666"}
        return await signed_answer(http, base, "twilio", form)

    response = on_server(scenario, public_host=None)
    doc = ET.fromstring(response.text)  # ill-formed XML raises here
    params = {p.get("name"): p.get("value") for p in doc.iter("Parameter")}
    assert params["from_number"] == "+1555" and params["to_number"] == "+1666"


@pytest.mark.parametrize("host", ["[bad", "a b", "h/x", "h:99999", "h:"])
def test_finding7_a_bad_host_header_gets_400_not_a_traceback(host: str, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> int:
        form = {"CallSid": "CA1", "AccountSid": ACCOUNT_SID}
        # Signed over the URL with that host, as if the provider had requested it.
        headers = {**twilio_headers(f"http://{host}/webhooks/twilio", form), "Host": host}
        return (await http.post(f"{base}/webhooks/twilio", content=form_body(form), headers=headers)).status_code

    assert on_server(scenario, public_host=None) == 400
    assert "Traceback" not in caplog.text and "Exception in ASGI" not in caplog.text


# --------------------------------------------------------------------------- finding 4: account-bound token


def test_finding4_a_twilio_token_is_bound_to_the_webhooks_account_sid() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> str | None:
        response = await signed_answer(http, base, "twilio", {"CallSid": CA1, "AccountSid": ACCOUNT_SID})
        return xml_token(response.text)

    token = on_server(scenario, public_host=None)
    assert tokens_check(token, CA1, "twilio", account=ACCOUNT_SID)
    assert not tokens_check(token, CA1, "twilio", account="AC" + "9" * 32)
    assert not tokens_check(token, CA1, "twilio", account=f"{ACCOUNT_SID}/Calls/CA9.json?x=")
    assert not tokens_check(token, CA1, "twilio")


def test_finding4_a_stream_claiming_another_account_than_its_webhook_is_refused_with_no_rest_call() -> None:
    api, seen = FastAPI(), []

    @api.post("/2010-04-01/Accounts/{account}/Calls/{call}.json")
    async def hangup(account: str, call: str, request: Request) -> Response:
        seen.append((account, call))
        return Response("{}", media_type="application/json")

    async def bot(transport: Any, call: Any) -> None:
        task = PipelineTask(Pipeline([transport.input(), KeypadBot(tone(300, 0.2, 24000)), transport.output()]))
        await PipelineRunner(handle_sigint=False).run(task)

    async def stream(hostport: str, token: str, account: str) -> int | None:
        client = await WireClient.connect(hostport, respond=False)
        start = {
            "accountSid": account,
            "streamSid": STREAM_SID,
            "callSid": CALL_SID,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"phonewireToken": token},
        }
        await client.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await client.send({"event": "start", "sequenceNumber": "1", "start": start, "streamSid": STREAM_SID})
        try:
            await client.dtmf("#")
            async with asyncio.timeout(5):
                while True:
                    await client.ws.recv()
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None
        finally:
            await client.close()

    async def main() -> list[int | None]:
        async with serve(api) as api_host:
            twilio_kwargs = {"auth_token": "tok", "base_url": f"http://{api_host}"}
            config = ServerConfig(stream_secret=SECRET, serializer_kwargs={"twilio": twilio_kwargs}, **credentials())
            async with serve(create_app(bot, config)) as hostport, httpx.AsyncClient() as http:
                codes = []
                for account in ("AC" + "9" * 32, ACCOUNT_SID):
                    form = {"CallSid": CALL_SID, "AccountSid": ACCOUNT_SID, "Nonce": account}  # one token each
                    token = xml_token((await signed_answer(http, f"http://{hostport}", "twilio", form)).text)
                    assert token is not None
                    codes.append(await stream(hostport, token, account))
                return codes

    assert asyncio.run(main()) == [1008, 1000]
    assert seen == [(ACCOUNT_SID, CALL_SID)]  # only the webhook's own account was ever hung up
