"""The second attack run on the webhooks (after issue 11), replayed against a real server.

Each test names the defect it pins (D1-D8 of the review). The reproductions are the
reviewer's (/tmp/attack at review time): a signed request the provider really sent, re-sent
with changes the signature does not see. Tokens are checked with a signer on the same secret.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from websockets.exceptions import ConnectionClosed

from phonewire.audio.analysis import tone
from phonewire.exceptions import ConfigurationError
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.server import ServerConfig, create_app
from phonewire.telephony.signatures import plivo_v3_signature, twilio_signature
from phonewire.telephony.tokens import StreamTokenError, StreamTokenSigner
from support.bots import KeypadBot
from support.server_harness import serve
from support.signed_webhooks import (
    ACCOUNT_SID,
    FORM,
    PLIVO_TOKEN,
    TWILIO_TOKEN,
    VONAGE_SECRET,
    credentials,
    telnyx_headers,
    vonage_jwt,
    vonage_query_payload,
)
from support.wire import STREAM_SID, WireClient

SECRET = "b" * 40
GENUINE = "11111111-1111-4111-8111-111111111111"
VICTIM = "99999999-9999-4999-8999-999999999999"
OTHER = "22222222-2222-4222-8222-222222222222"
CALL_SID = "CA" + "b" * 32


def token_for(token: str | None, call_id: str, provider: str, account: str = "") -> bool:
    try:
        StreamTokenSigner(SECRET).verify(token, call_id, provider=provider, account=account)
    except StreamTokenError:
        return False
    return True


def on_server(scenario: Callable[[httpx.AsyncClient, str], Awaitable[Any]], **config: Any) -> Any:
    async def main() -> Any:
        settings = {"stream_secret": SECRET, **credentials(), **config}
        app = create_app(lambda t, c: asyncio.sleep(0), ServerConfig(**settings))
        async with serve(app) as hostport, httpx.AsyncClient(timeout=20) as http:
            return await scenario(http, f"http://{hostport}")

    return asyncio.run(main())


def token_in(text: str) -> str | None:
    match = re.search(r'name="phonewireToken" value="([^"]+)"', text) or re.search(
        r"phonewireToken=([A-Za-z0-9_.-]+)", text
    )
    if match:
        return match.group(1)
    try:
        return json.loads(text)[0]["endpoint"][0]["headers"].get("phonewireToken")  # type: ignore[no-any-return]
    except (ValueError, LookupError, TypeError, AttributeError):
        return None


def multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return fields


# --------------------------------------------------------------------------- D1: repeated names


def test_d1_a_vonage_get_naming_uuid_twice_mints_nothing_for_either() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> httpx.Response:
        genuine = {"uuid": GENUINE, "from": "447700900001", "to": "447700900002"}
        jwt = vonage_jwt(vonage_query_payload(genuine))  # payload_hash over the genuine query
        query = f"uuid={VICTIM}&" + urllib.parse.urlencode(genuine)  # the victim's first
        return await http.get(f"{base}/webhooks/vonage?{query}", headers={"Authorization": f"Bearer {jwt}"})

    response = on_server(scenario)
    assert response.status_code in (400, 403)
    assert "phonewireToken" not in response.text and VICTIM not in response.text


@pytest.mark.parametrize("provider", ["twilio", "telnyx", "plivo-post", "plivo-get", "exotel"])
def test_d1_a_repeated_field_name_is_refused_by_every_webhook(provider: str) -> None:
    """Correctly signed (the signatures cover every value), yet refused: which value is the call?"""
    pairs = [("CallSid", CALL_SID), ("CallUUID", GENUINE), ("CallControlId", "v3:genuine")]
    pairs += [("CallSid", "CA" + "9" * 32), ("CallUUID", VICTIM), ("CallControlId", "v3:victim")]

    async def scenario(http: httpx.AsyncClient, base: str) -> httpx.Response:
        body = urllib.parse.urlencode(pairs).encode()
        if provider == "twilio":
            url = f"{base}/webhooks/twilio"
            headers = {"X-Twilio-Signature": twilio_signature(url, multi(pairs), TWILIO_TOKEN), "Content-Type": FORM}
            return await http.post(url, content=body, headers=headers)
        if provider == "telnyx":
            return await http.post(f"{base}/webhooks/telnyx", content=body, headers={**telnyx_headers(body)})
        if provider == "plivo-post":
            url, nonce = f"{base}/webhooks/plivo", "n-d1"
            signature = plivo_v3_signature("POST", url, multi(pairs), nonce, PLIVO_TOKEN)
            headers = {"X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": nonce, "Content-Type": FORM}
            return await http.post(url, content=body, headers=headers)
        if provider == "plivo-get":
            url, nonce = f"{base}/webhooks/plivo?{body.decode()}", "n-d1"
            signature = plivo_v3_signature("GET", url, None, nonce, PLIVO_TOKEN)
            return await http.get(url, headers={"X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": nonce})
        auth = "Basic " + base64.b64encode(credentials()["exotel_webhook_basic_auth"].encode()).decode()
        return await http.get(f"{base}/webhooks/exotel?{body.decode()}", headers={"Authorization": auth})

    response = on_server(scenario, public_host=None)
    assert response.status_code == 400 and "phonewireToken" not in response.text


# --------------------------------------------------------------------------- D2: Content-Type


def test_d2_a_signed_telnyx_json_body_resent_as_a_form_mints_nothing() -> None:
    injected = "v3:victimCall"

    async def scenario(http: httpx.AsyncClient, base: str) -> httpx.Response:
        payload = {"call_control_id": "v3:mine", "from": f"sip:a&CallControlId={injected}&b=@x", "to": "+1"}
        body = json.dumps({"data": {"event_type": "call.initiated", "payload": payload}}).encode()
        return await http.post(
            f"{base}/webhooks/telnyx", content=body, headers={**telnyx_headers(body), "Content-Type": FORM}
        )

    response = on_server(scenario, public_host="bot.example.com")
    assert response.status_code == 400
    assert not token_for(token_in(response.text), injected, "telnyx")


def test_d2_a_signed_vonage_json_body_resent_as_a_form_mints_nothing() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> httpx.Response:
        body = json.dumps({"uuid": GENUINE, "from": f"x&uuid={VICTIM}&y=", "to": "2"}).encode()
        headers = {"Authorization": f"Bearer {vonage_jwt(body)}", "Content-Type": FORM}
        return await http.post(f"{base}/webhooks/vonage", content=body, headers=headers)

    response = on_server(scenario, public_host="bot.example.com")
    assert response.status_code == 400 and VICTIM not in response.text


def test_d2_the_body_decides_its_format_and_a_contradicting_content_type_is_refused() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> list[httpx.Response]:
        url = f"{base}/webhooks/telnyx"
        event = json.dumps({"data": {"payload": {"call_control_id": "v3:json-call"}}}).encode()
        texml = urllib.parse.urlencode({"CallSid": "v3:form-call"}).encode()
        return [
            await http.post(url, content=event, headers=telnyx_headers(event)),  # no Content-Type: JSON by its body
            await http.post(url, content=texml, headers=telnyx_headers(texml)),  # a TeXML form
            await http.post(url, content=texml, headers={**telnyx_headers(texml), "Content-Type": "application/json"}),
        ]

    as_json, as_form, contradicted = on_server(scenario, public_host="bot.example.com")
    assert token_for(token_in(as_json.text), "v3:json-call", "telnyx")
    assert token_for(token_in(as_form.text), "v3:form-call", "telnyx")
    assert contradicted.status_code == 400 and "phonewireToken" not in contradicted.text


# --------------------------------------------------------------------------- D3: one MAC, one token


def test_d3_signature_preserving_variants_of_a_twilio_webhook_all_get_the_first_token() -> None:
    pairs = [("AccountSid", ACCOUNT_SID), ("CallSid", CALL_SID), ("From", "+15550001"), ("To", "+15550002")]

    async def scenario(http: httpx.AsyncClient, base: str) -> list[tuple[str, int, str | None]]:
        host = base.removeprefix("http://")
        url = f"http://{host.split(':')[0]}/webhooks/twilio"  # signed without the port
        headers = {"X-Twilio-Signature": twilio_signature(url, multi(pairs), TWILIO_TOKEN), "Content-Type": FORM}
        body = urllib.parse.urlencode(pairs)
        variants = {
            "genuine": (body, host),
            "replay": (body, host),
            "reordered": (urllib.parse.urlencode(list(reversed(pairs))), host),
            "duplicated field": (body + f"&CallSid={CALL_SID}", host),
            "percent-encoded name": (body.replace("CallSid", "%43allSid"), host),
            "Host without the port": (body, host.split(":")[0]),
            "CallSid swallows From": (
                urllib.parse.urlencode(
                    [("AccountSid", ACCOUNT_SID), ("CallSid", CALL_SID + "From+15550001"), ("To", "+15550002")]
                ),
                host,
            ),
        }
        results = []
        for name, (content, host_header) in variants.items():
            r = await http.post(f"{base}/webhooks/twilio", content=content, headers={**headers, "Host": host_header})
            results.append((name, r.status_code, token_in(r.text)))
        return results

    results = on_server(scenario, public_host="bot.example.com")
    first = results[0][2]
    assert token_for(first, CALL_SID, "twilio", account=ACCOUNT_SID)
    minted = {name: token for name, status, token in results if status == 200}
    assert set(minted.values()) == {first}, [(n, s, t == first) for n, s, t in results]
    refused = {name for name, status, _ in results if status != 200}
    assert refused == {"duplicated field", "CallSid swallows From"}


def test_d3_signature_preserving_variants_of_a_plivo_webhook_all_get_the_first_token() -> None:
    pairs = [("CallUUID", GENUINE), ("From", "+1555"), ("To", "+1666")]

    async def scenario(http: httpx.AsyncClient, base: str) -> list[str | None]:
        url = f"{base}/webhooks/plivo"
        nonce = "nonce-d3"
        signature = plivo_v3_signature("POST", url, multi(pairs), nonce, PLIVO_TOKEN)
        signed = {"X-Plivo-Signature-V3-Nonce": nonce, "Content-Type": FORM}
        query = urllib.parse.urlencode([("CallUUID", OTHER), ("From", "+1"), ("To", "+2")])
        get_url = f"{url}?{query}"
        get_signature = plivo_v3_signature("GET", get_url, None, nonce, PLIVO_TOKEN)
        reordered_get = f"{url}?" + "&".join(reversed(query.split("&")))
        get_headers = {"X-Plivo-Signature-V3": get_signature, "X-Plivo-Signature-V3-Nonce": nonce}
        return [
            token_in(
                (
                    await http.post(
                        url, content=urllib.parse.urlencode(p), headers={**signed, "X-Plivo-Signature-V3": s}
                    )
                ).text
            )
            for p, s in (
                (pairs, signature),
                (list(reversed(pairs)), signature),  # the signature sorts the fields
                (pairs, f"{signature}, AAAA"),  # junk appended to the header
                (pairs, f"AAAA,{signature}"),
            )
        ] + [
            token_in((await http.get(get_url, headers=get_headers)).text),
            token_in((await http.get(reordered_get, headers=get_headers)).text),
        ]

    tokens = on_server(scenario, public_host="bot.example.com")
    post, get = tokens[:4], tokens[4:]
    assert token_for(post[0], GENUINE, "plivo") and set(post) == {post[0]}
    assert token_for(get[0], OTHER, "plivo") and set(get) == {get[0]}


@pytest.mark.parametrize(
    ("provider", "fields"),
    [
        ("twilio", {"CallSid": "CA1", "AccountSid": ACCOUNT_SID}),
        ("twilio", {"CallSid": CALL_SID, "AccountSid": f"{ACCOUNT_SID}/Calls/CA9.json?x="}),
        ("plivo", {"CallUUID": "not-a-uuid"}),
        ("telnyx", {"CallControlId": "v3:a/../b"}),
    ],
)
def test_d3_an_id_not_in_its_providers_format_gets_no_token(provider: str, fields: dict[str, str]) -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> httpx.Response:
        from support.signed_webhooks import signed_answer

        return await signed_answer(http, base, provider, fields)

    response = on_server(scenario, public_host="bot.example.com")
    assert response.status_code == 400 and "phonewireToken" not in response.text


def test_d3_a_reordered_replay_opens_no_second_verified_session_and_hangs_up_nothing_more() -> None:
    api, seen = FastAPI(), []

    @api.post("/2010-04-01/Accounts/{account}/Calls/{call}.json")
    async def hangup(account: str, call: str, request: Request) -> Response:
        seen.append(call)
        return Response("{}", media_type="application/json")

    async def bot(transport: Any, call: Any) -> None:
        task = PipelineTask(Pipeline([transport.input(), KeypadBot(tone(300, 0.2, 24000)), transport.output()]))
        await PipelineRunner(handle_sigint=False).run(task)

    async def stream(hostport: str, token: str | None) -> int | None:
        client = await WireClient.connect(hostport, respond=False)
        start = {
            "accountSid": ACCOUNT_SID,
            "streamSid": STREAM_SID,
            "callSid": CALL_SID,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"phonewireToken": token or ""},
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
            kwargs = {"twilio": {"auth_token": "tok", "base_url": f"http://{api_host}"}}
            config = ServerConfig(stream_secret=SECRET, serializer_kwargs=kwargs, vad=None, **credentials())
            async with serve(create_app(bot, config)) as hostport, httpx.AsyncClient() as http:
                url = f"http://{hostport}/webhooks/twilio"
                pairs = [("AccountSid", ACCOUNT_SID), ("CallSid", CALL_SID), ("From", "+15550001")]
                headers = {
                    "X-Twilio-Signature": twilio_signature(url, multi(pairs), TWILIO_TOKEN),
                    "Content-Type": FORM,
                }
                genuine = (await http.post(url, content=urllib.parse.urlencode(pairs), headers=headers)).text
                codes = [await stream(hostport, token_in(genuine))]
                reordered = urllib.parse.urlencode(list(reversed(pairs)))
                replay = (await http.post(url, content=reordered, headers=headers)).text
                codes.append(await stream(hostport, token_in(replay)))
                return codes

    assert asyncio.run(main()) == [1000, 1008]  # the replay's token is the genuine one, spent
    assert seen == [CALL_SID]  # hung up once, by the genuine stream


# --------------------------------------------------------------------------- D6: Vonage without jti


def _flip_last(segment: str) -> str:
    """Another base64url spelling of the same bytes: a 32-byte MAC is 43 characters, so the
    last one's two low bits are unused."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) ^ 1]


def test_d6_every_spelling_of_one_vonage_jwt_without_jti_gets_the_same_token() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> list[str | None]:
        query = {"uuid": GENUINE}
        head = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).rstrip(b"=").decode()
        claims = {"iat": int(time.time()), "payload_hash": hashlib.sha256(vonage_query_payload(query)).hexdigest()}
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        mac = hmac.new(VONAGE_SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        signature = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
        jwt = f"{head}.{body}.{signature}"
        spellings = [
            f"Bearer {jwt}",
            f"bearer  {jwt}",
            f"BEARER {jwt}",
            f"Bearer {head}.{body}.{_flip_last(signature)}",
        ]
        url = f"{base}/webhooks/vonage?" + urllib.parse.urlencode(query)
        return [token_in((await http.get(url, headers={"Authorization": a})).text) for a in spellings]

    tokens = on_server(scenario, public_host="bot.example.com")
    assert token_for(tokens[0], GENUINE, "vonage") and set(tokens) == {tokens[0]}


# --------------------------------------------------------------------------- D7: trailing slash


def test_d7_a_trailing_slash_is_not_redirected_to_the_host_header() -> None:
    async def scenario(http: httpx.AsyncClient, base: str) -> list[httpx.Response]:
        return [
            await http.post(f"{base}/webhooks/twilio/", content=b"", headers={"Host": "evil.example"}),
            await http.get(f"{base}/healthz/", headers={"Host": "evil.example"}),
        ]

    for response in on_server(scenario, public_host=None):
        assert response.status_code == 404 and "location" not in response.headers


# --------------------------------------------------------------------------- D8: configuration


@pytest.mark.parametrize(
    "kwargs",
    [
        {"twilio": {"auth_tokn": "typo"}},
        {"plivo": {"auth_id": "MA1", "auth_token": "t", "paramz": None}},
        {"twillio": {"auth_token": "t"}},
    ],
)
def test_d8_a_wrong_serializer_kwargs_entry_fails_at_start_up(kwargs: dict[str, dict[str, Any]]) -> None:
    with pytest.raises(ConfigurationError, match="serializer_kwargs"):
        create_app(lambda t, c: asyncio.sleep(0), ServerConfig(vad=None, serializer_kwargs=kwargs))


def test_d8_right_serializer_kwargs_still_start() -> None:
    kwargs = {"twilio": {"auth_token": "t", "base_url": "http://127.0.0.1:9"}, "telnyx": {"api_key": "k"}}
    create_app(lambda t, c: asyncio.sleep(0), ServerConfig(vad=None, serializer_kwargs=kwargs))
