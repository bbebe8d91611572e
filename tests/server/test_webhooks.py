"""Each provider's call webhook answers with the document that connects the call to /ws, and
the parameters it carries reach the bot's CallInfo."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from typing import Any

import httpx

from phonewire.serializers.base import CallInfo
from phonewire.server import ServerConfig, create_app
from support.server_harness import serve
from support.signed_webhooks import ACCOUNT_SID, credentials, signed_answer
from support.wire import WireClient, twilio

SECRET = "w" * 40
#: Call ids in their providers' formats: the webhooks mint tokens for nothing else.
CA_1 = "CA" + "1" * 32
UUID_1 = "6f1c2b7a-0d4e-4c51-9a3b-5e8d7c6b4a21"
UUID_2 = "3d9a7c1e-5b2f-4e8a-9c6d-7f1e2a3b4c5d"


def answer(method: str, path: str, data: dict[str, str] | None = None, **config: Any) -> tuple[int, str, str]:
    """The provider's signed request to ``path`` (every route refuses what it cannot verify)."""

    async def main() -> tuple[int, str, str]:
        settings = {**credentials(), **config}
        app = create_app(lambda t, c: asyncio.sleep(0), ServerConfig(stream_secret=SECRET, **settings))
        async with serve(app) as hostport, httpx.AsyncClient() as http:
            provider = path.rsplit("/", 1)[1]
            r = await signed_answer(http, f"http://{hostport}", provider, data or {}, method=method)
            return r.status_code, r.headers["content-type"], r.text

    return asyncio.run(main())


def test_twilio_gets_twiml_connect_stream_with_numbers_and_a_token() -> None:
    status, ctype, body = answer(
        "POST", "/webhooks/twilio", {"CallSid": CA_1, "From": "+1555", "To": "+1666"}, public_host="bot.example.com"
    )
    assert status == 200 and ctype.startswith("application/xml")
    assert '<Connect><Stream url="wss://bot.example.com/ws">' in body
    assert '<Parameter name="from_number" value="+1555"/>' in body and 'name="phonewireToken"' in body


def test_telnyx_gets_texml_in_rtp_mode() -> None:
    _, _, body = answer("POST", "/webhooks/telnyx", {"CallControlId": "v2:abc", "From": "+1"}, public_host="h")
    assert 'bidirectionalMode="rtp"' in body and 'bidirectionalCodec="PCMU"' in body and "wss://h/ws" in body


def test_plivo_gets_a_bidirectional_stream_that_keeps_the_call_alive() -> None:
    _, _, body = answer("POST", "/webhooks/plivo", {"CallUUID": UUID_1, "From": "+1"}, public_host="h")
    assert 'bidirectional="true"' in body and 'keepCallAlive="true"' in body
    assert 'contentType="audio/x-mulaw;rate=8000"' in body and ">wss://h/ws</Stream>" in body
    assert "phonewireToken=" in body


def test_vonage_gets_an_ncco_whose_headers_name_the_call() -> None:
    _, ctype, body = answer("GET", "/webhooks/vonage", {"uuid": UUID_1, "from": "447700900000"}, public_host="h")
    (action,) = json.loads(body)
    endpoint = action["endpoint"][0]
    assert ctype.startswith("application/json") and action["action"] == "connect"
    assert endpoint["type"] == "websocket" and endpoint["uri"] == "wss://h/ws"
    assert endpoint["content-type"] == "audio/l16;rate=16000"
    assert endpoint["headers"]["call_uuid"] == UUID_1 and "phonewireToken" in endpoint["headers"]


def test_exotel_gets_a_dynamic_stream_url() -> None:
    _, _, body = answer("GET", "/webhooks/exotel", {"CallSid": "ex1"}, public_host="h")
    url = urllib.parse.urlsplit(json.loads(body)["url"])
    query = dict(urllib.parse.parse_qsl(url.query))
    assert (url.scheme, url.netloc, url.path) == ("wss", "h", "/ws")
    assert query["sample-rate"] == "8000" and "phonewireToken" in query


def test_parameters_from_the_webhook_reach_the_bots_call_info() -> None:
    async def main() -> CallInfo:
        seen: list[CallInfo] = []
        arrived = asyncio.Event()

        async def bot(transport: Any, call: CallInfo) -> None:
            seen.append(call)
            arrived.set()

        app = create_app(bot, ServerConfig(stream_secret=SECRET, stream_scheme="ws", **credentials()))
        async with serve(app) as hostport:
            async with httpx.AsyncClient() as http:
                form = {"CallSid": "CA00000000000000000000000000000001", "AccountSid": ACCOUNT_SID}
                twiml = (
                    await signed_answer(http, f"http://{hostport}", "twilio", {**form, "From": "+1555", "To": "+1666"})
                ).text
            params = dict(re.findall(r'<Parameter name="([^"]+)" value="([^"]*)"', twiml))
            client = await WireClient.connect(hostport, twilio(params), respond=False)
            await client.handshake()
            await client.close()
            await asyncio.wait_for(arrived.wait(), 5)
        return seen[0]

    info = asyncio.run(main())
    assert (info.provider, info.from_number, info.to_number) == ("twilio", "+1555", "+1666")


def test_the_telnyx_serializer_sends_the_codec_the_texml_asked_for() -> None:
    from phonewire.server.app import _serializer
    from phonewire.telephony.detect import detect
    from phonewire.testing.providers.telnyx import TelnyxClient

    for codec, rate, expected in (("PCMA", 8000, ("alaw", 8000)), ("L16", 16000, ("l16", 16000))):
        info = detect(TelnyxClient(codec="PCMU").opening_messages()).info  # type: ignore[union-attr]
        fmt = _serializer(info, ServerConfig(telnyx_codec=codec, telnyx_sampling_rate=rate)).output_format
        assert (fmt.encoding, fmt.sample_rate) == expected
    _, _, body = answer(
        "POST",
        "/webhooks/telnyx",
        {"CallControlId": "v2:x"},
        public_host="h",
        telnyx_codec="L16",
        telnyx_sampling_rate=16000,
    )
    assert 'bidirectionalCodec="L16"' in body and 'bidirectionalSamplingRate="16000"' in body


def test_plivo_get_webhooks_are_verified_over_the_query_and_name_the_call() -> None:
    status, _, body = answer("GET", "/webhooks/plivo", {"CallUUID": UUID_2, "From": "+1"}, public_host="h")
    assert status == 200 and "phonewireToken=" in body and "From=+1" in body


def test_vonage_get_webhooks_with_a_payload_hash_over_the_query_get_a_token() -> None:
    status, _, body = answer("GET", "/webhooks/vonage", {"uuid": UUID_2, "from": "4477"}, public_host="h")
    headers = json.loads(body)[0]["endpoint"][0]["headers"]
    assert status == 200 and headers["call_uuid"] == UUID_2 and "phonewireToken" in headers
