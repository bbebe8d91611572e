"""Call control end to end, per provider: real server, simulated caller, fake OpenAI and a
fake provider REST API that answers like the provider and follows the call.

Each call is set up through the server's signed webhook (so the stream token verifies the
call id and REST requests are allowed), then the LLM is scripted to call the tool.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from phonewire.frames import AnsweringMachineFrame, TTSSpeakFrame
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.processors.aggregators import LLMContext, LLMContextAggregatorPair
from phonewire.serializers.plivo import PlivoFrameSerializer
from phonewire.serializers.telnyx import TelnyxFrameSerializer
from phonewire.serializers.twilio import TwilioFrameSerializer
from phonewire.serializers.vonage import VonageFrameSerializer
from phonewire.server import ServerConfig, create_app
from phonewire.services.call_control import leave_voicemail, register_call_control
from phonewire.services.openai import OpenAILLMService, OpenAISTTService, OpenAITTSService
from phonewire.telephony.call_control.outbound import OutboundLimiter, place_call
from phonewire.testing import FakeProviderAPI, Say, WaitForBotReply, WaitForHangup, builtin_recording, simulate_call
from phonewire.testing.fakes import FakeOpenAIServer, TextReply, ToolCall, ToolCallsReply
from phonewire.testing.providers import PlivoClient, ProviderClient, TelnyxClient, TwilioClient, VonageClient
from support.server_harness import serve
from support.signed_webhooks import (
    ACCOUNT_SID,
    FORM,
    TWILIO_TOKEN,
    credentials,
    form_body,
    plivo_headers,
    signed_answer,
    telnyx_headers,
    twilio_headers,
    vonage_jwt,
)

pytestmark = pytest.mark.slow

PROVIDERS = ("twilio", "telnyx", "plivo", "vonage")
SALES = "+14155550100"
SECRET = "phonewire-test-stream-secret-0123456789"
HELLO = builtin_recording("hello")
GREETING = "Hello, how can I help?"
ANNOUNCEMENT = "One moment, I am connecting you to sales."
GOODBYE = "Thanks for calling, goodbye."
VOICEMAIL = "Hi, this is Acme calling about your order. Please call us back."


def _pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


PEM = _pem()


@dataclass
class BotSide:
    transports: list[Any] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    amd: list[AnsweringMachineFrame] = field(default_factory=list)


def app(fake: FakeOpenAIServer, api: FakeProviderAPI, side: BotSide) -> Any:
    async def bot(transport: Any, info: Any) -> None:
        side.transports.append(transport)
        stt = OpenAISTTService(api_key="k", base_url=fake.base_url, model="whisper-1")
        llm = OpenAILLMService(api_key="k", base_url=fake.base_url, model="gpt-4o-mini")
        tts = OpenAITTSService(api_key="k", base_url=fake.base_url, model="tts-1")
        tools = register_call_control(llm, transport, destinations={"sales": SALES}, announcement=ANNOUNCEMENT)
        context = LLMContext([{"role": "system", "content": "You are a phone agent."}], tools=tools)
        pair = LLMContextAggregatorPair(context)
        task = PipelineTask(
            Pipeline([transport.input(), stt, pair.user(), llm, tts, transport.output(), pair.assistant()])
        )

        leave_voicemail(transport, task, VOICEMAIL)

        @transport.event_handler("on_answering_machine")
        async def on_machine(transport: Any, frame: AnsweringMachineFrame) -> None:
            side.amd.append(frame)

        await task.queue_frame(TTSSpeakFrame(text=GREETING))
        await PipelineRunner(handle_sigint=False, handle_sigterm=False).run(task)
        side.finished.append(transport.stats.hangup or "none")

    config = ServerConfig(
        vad="silero", stream_scheme="ws", freeze_gc=False, stream_secret=SECRET, **credentials(),
        telnyx_stream_token=None, serializer_kwargs=serializer_kwargs(api.base_url),
    )  # fmt: skip
    return create_app(bot, config)


def serializer_kwargs(base: str) -> dict[str, dict[str, Any]]:
    vonage = VonageFrameSerializer.InputParams(base_url=base)
    return {
        "twilio": {"auth_token": TWILIO_TOKEN, "params": TwilioFrameSerializer.InputParams(base_url=base)},
        "telnyx": {"api_key": "KEY", "params": TelnyxFrameSerializer.InputParams(base_url=base)},
        "plivo": {"auth_id": "MAAUTH", "auth_token": "tok", "params": PlivoFrameSerializer.InputParams(base_url=base)},
        "vonage": {"application_id": "app-1", "private_key": PEM, "params": vonage},
    }


async def set_up_call(
    http: httpx.AsyncClient, base: str, name: str, call: str | None = None
) -> tuple[str, ProviderClient]:
    """Ask the server's signed webhook for the stream, as the provider would."""
    if name == "twilio":
        call = call or "CA" + uuid.uuid4().hex
        doc = ET.fromstring(
            (await signed_answer(http, base, "twilio", {"CallSid": call, "AccountSid": ACCOUNT_SID})).text
        )
        stream = doc.find("./Connect/Stream")
        assert stream is not None
        params = {p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")}
        return stream.get("url", ""), TwilioClient(account_sid=ACCOUNT_SID, call_sid=call, custom_parameters=params)
    if name == "telnyx":
        call = call or "v3:" + uuid.uuid4().hex
        doc = ET.fromstring((await signed_answer(http, base, "telnyx", {"CallControlId": call})).text)
        stream = doc.find("./Connect/Stream")
        assert stream is not None
        params = {p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")}
        return stream.get("url", ""), TelnyxClient(call_control_id=call, custom_parameters=params)
    if name == "plivo":
        call = call or str(uuid.uuid4())
        doc = ET.fromstring((await signed_answer(http, base, "plivo", {"CallUUID": call})).text)
        stream = doc.find("./Stream")
        assert stream is not None
        params = dict(p.split("=", 1) for p in stream.get("extraHeaders", "").split(";"))
        client = PlivoClient(call_id=call, account_id="MAAUTH", custom_parameters=params,
                             content_type=stream.get("contentType", ""))  # fmt: skip
        return (stream.text or "").strip(), client
    call = call or str(uuid.uuid4())
    [connect] = (await signed_answer(http, base, "vonage", {"uuid": call}, method="GET")).json()
    [endpoint] = connect["endpoint"]
    rate = int(endpoint["content-type"].rsplit("=", 1)[1])
    return endpoint["uri"], VonageClient(sample_rate=rate, custom_parameters=endpoint["headers"])


def run_call(name: str, replies: list[Any], script: list[Any], *, fail: str | None = None) -> tuple[Any, ...]:
    async def main() -> tuple[Any, ...]:
        side = BotSide()
        with FakeOpenAIServer(transcripts=["Can I talk to sales?", "OK, thanks."], chat_replies=replies) as fake:
            async with FakeProviderAPI() as api:
                if fail:
                    api.fail(fail, 400)
                server = app(fake, api, side)
                async with serve(server) as hostport, httpx.AsyncClient() as http:
                    url, client = await set_up_call(http, f"http://{hostport}", name)
                    report = await simulate_call(url, provider=client, script=script, api=api, max_duration_s=30)
                    await _bot_done(side)
                speech = [r.json["input"] for r in fake.speech_requests]
                return report, client, api, side, speech, list(fake.chat_requests)

    return asyncio.run(main())


async def _bot_done(side: BotSide) -> None:
    deadline = time.monotonic() + 8
    while not side.finished and time.monotonic() < deadline:  # noqa: ASYNC110 (the bot appends when its runner returns)
        await asyncio.sleep(0.02)


def transfer_script() -> list[Any]:
    return [WaitForBotReply(timeout=8), Say.from_wav(HELLO), WaitForHangup(timeout=15)]


def assert_documented_transfer(name: str, request: Any, client: ProviderClient) -> None:
    """The exact request each provider documents for a cold transfer."""
    auth = request.headers["authorization"]
    if name == "twilio":
        assert (request.method, request.path) == (
            "POST",
            f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{client.call_id}.json",
        )
        assert request.form == {"Twiml": f'<Response><Dial timeout="30"><Number>{SALES}</Number></Dial></Response>'}
        assert auth == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{TWILIO_TOKEN}".encode()).decode()
    elif name == "telnyx":
        assert (request.method, request.path) == ("POST", f"/v2/calls/{client.call_id}/actions/transfer")
        assert request.json == {"to": SALES} and auth == "Bearer KEY"
    elif name == "plivo":
        assert (request.method, request.path) == ("POST", f"/v1/Account/MAAUTH/Call/{client.call_id}/")
        assert request.json["legs"] == "aleg" and request.json["aleg_method"] == "POST"
        aleg = urlsplit(request.json["aleg_url"])
        assert aleg.path == "/call-control/plivo/transfer" and parse_qs(aleg.query) == {"to": [SALES]}
        assert auth == "Basic " + base64.b64encode(b"MAAUTH:tok").decode()
    else:
        assert (request.method, request.path) == ("PUT", f"/v1/calls/{client.call_id}")
        connect = {"action": "connect", "endpoint": [{"type": "phone", "number": SALES[1:]}], "randomFromNumber": True}
        assert request.json == {"action": "transfer", "destination": {"type": "ncco", "ncco": [connect]}}
        assert auth.startswith("Bearer ey")


@pytest.mark.parametrize("name", PROVIDERS)
def test_transfer_call_tool_sends_the_documented_request_after_the_announcement_and_ends_cleanly(name: str) -> None:
    replies = [ToolCallsReply([ToolCall("transfer_call", {"destination": "sales", "summary": "Wants sales."})])]
    report, client, api, side, speech, _ = run_call(name, replies, transfer_script())
    text = report.render_text()
    assert report.completed and report.transferred_to is not None, text
    assert report.end_reason.startswith("transferred to "), text
    assert SALES.lstrip("+") in report.transferred_to, text
    [request] = api.control_requests("transfer")
    assert_documented_transfer(name, request, client)
    assert speech == [GREETING, ANNOUNCEMENT]
    # Everything the bot sent was heard before the call left it: the announcement played out first.
    assert report.audio_played_s > 2.0 and report.audio_received_s - report.audio_played_s < 0.05, text
    assert side.finished == ["skipped: transferred"]  # the runner returned; no hang-up of the moved call
    assert api.hangups() == []


APOLOGY = "Sorry, sales is not available right now. Can I help with anything else?"
THANKS = builtin_recording("thanks")


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_failed_transfer_lets_the_bot_apologise_and_end_call_plays_the_goodbye_before_hanging_up(name: str) -> None:
    replies = [
        ToolCallsReply([ToolCall("transfer_call", {"destination": "sales"})]),
        TextReply(APOLOGY),
        # The goodbye and the tool call in one reply: the text already generated plays out first.
        ToolCallsReply([ToolCall("end_call")], text=GOODBYE),
    ]
    script = [
        WaitForBotReply(timeout=8),
        Say.from_wav(HELLO),
        WaitForBotReply(timeout=12),
        Say.from_wav(THANKS),
        WaitForHangup(timeout=15),
    ]
    report, client, api, side, speech, chats = run_call(name, replies, script, fail="transfer")
    text = report.render_text()
    assert report.completed and report.transferred_to is None, text
    [refused] = api.control_requests("transfer")
    assert refused.status == 400
    tool_message = chats[1].json["messages"][-1]
    assert tool_message["role"] == "tool" and "failed" in tool_message["content"]
    assert "".join(speech).replace(" ", "") == (GREETING + ANNOUNCEMENT + APOLOGY + GOODBYE).replace(" ", "")
    # The bot hung up over REST only after the goodbye was heard in full.
    assert report.hangup == "rest" and report.end_reason == "the bot hung up over the REST API", text
    assert report.audio_received_s - report.audio_played_s < 0.05, text
    assert len(api.hangups(client.call_id)) == 1 and side.finished == ["done"]


CALLEE, OURS = "+15550001111", "+15550002222"
DIAL_CREDENTIALS: dict[str, dict[str, Any]] = {
    "twilio": {"account_sid": ACCOUNT_SID, "auth_token": TWILIO_TOKEN},
    "telnyx": {"api_key": "KEY", "connection_id": "conn-1"},
    "plivo": {"auth_id": "MAAUTH", "auth_token": "tok"},
    "vonage": {"application_id": "app-1", "private_key": PEM},
}


async def signed_post(http: httpx.AsyncClient, name: str, url: str, fields: dict[str, Any]) -> httpx.Response:
    """A provider's signed callback: form for Twilio and Plivo, JSON for Telnyx and Vonage."""
    if name == "twilio":
        return await http.post(url, content=form_body(fields), headers=twilio_headers(url, fields))
    if name == "plivo":
        headers = {**plivo_headers("POST", url, fields), "Content-Type": FORM}
        return await http.post(url, content=form_body(fields), headers=headers)
    body = json.dumps(fields).encode()
    if name == "telnyx":
        return await http.post(url, content=body, headers={**telnyx_headers(body), "Content-Type": "application/json"})
    headers = {"Authorization": f"Bearer {vonage_jwt(body)}", "Content-Type": "application/json"}
    return await http.post(url, content=body, headers=headers)


def assert_documented_create(name: str, request: Any, base: str) -> None:
    if name == "twilio":
        assert (request.method, request.path) == ("POST", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json")
        form = parse_qs(request.body.decode())
        assert form["To"] == [CALLEE] and form["From"] == [OURS] and form["Url"] == [f"{base}/webhooks/twilio"]
        assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
        assert form["MachineDetection"] == ["DetectMessageEnd"] and form["AsyncAmd"] == ["true"]
        assert form["AsyncAmdStatusCallback"][0].startswith(f"{base}/call-control/twilio/amd?ref=pwout-")
    elif name == "telnyx":
        assert (request.method, request.path) == ("POST", "/v2/calls")
        body = request.json
        assert (body["to"], body["from"], body["connection_id"]) == (CALLEE, OURS, "conn-1")
        assert body["webhook_url"] == f"{base}/call-control/telnyx/events"
        assert body["answering_machine_detection"] == "detect"
    elif name == "plivo":
        assert (request.method, request.path) == ("POST", "/v1/Account/MAAUTH/Call/")
        body = request.json
        assert (body["to"], body["from"], body["answer_url"]) == (CALLEE, OURS, f"{base}/webhooks/plivo")
        assert body["machine_detection"] == "true" and "/call-control/plivo/amd?ref=" in body["machine_detection_url"]
    else:
        assert (request.method, request.path) == ("POST", "/v1/calls")
        body = request.json
        assert body["to"] == [{"type": "phone", "number": CALLEE[1:]}] and body["from"]["number"] == OURS[1:]
        assert body["answer_url"] == [f"{base}/webhooks/vonage"]
        assert body["advanced_machine_detection"] == {"behavior": "continue", "mode": "detect_beep"}


async def answer(
    http: httpx.AsyncClient, api: FakeProviderAPI, base: str, name: str, placed: Any, create: Any
) -> tuple[str, Any, str, dict[str, Any]]:
    """Play the provider answering the outbound call: (stream URL, client, AMD URL, AMD fields)."""
    if name == "twilio":
        url, client = await set_up_call(http, base, "twilio", call=placed.call_id)
        amd_url = parse_qs(create.body.decode())["AsyncAmdStatusCallback"][0]
        return url, client, amd_url, {"CallSid": placed.call_id, "AnsweredBy": "machine_end_beep"}
    if name == "telnyx":
        state = create.json["client_state"]
        event = {
            "data": {
                "event_type": "call.answered",
                "payload": {"call_control_id": placed.call_id, "client_state": state},
            }
        }
        assert (await signed_post(http, "telnyx", create.json["webhook_url"], event)).status_code == 204
        start = await api.wait_for("streaming_start", placed.call_id)
        params = {p["name"]: p["value"] for p in start.json["custom_parameters"]}
        assert start.json["stream_bidirectional_mode"] == "rtp"
        client = TelnyxClient(call_control_id=placed.call_id, custom_parameters=params)
        payload = {"call_control_id": placed.call_id, "client_state": state, "result": "machine"}
        amd = {"data": {"event_type": "call.machine.detection.ended", "payload": payload}}
        return start.json["stream_url"], client, create.json["webhook_url"], amd
    if name == "plivo":
        call_uuid = str(uuid.uuid4())  # Plivo names the call when it is answered
        url, client = await set_up_call(http, base, "plivo", call=call_uuid)
        return url, client, create.json["machine_detection_url"], {"CallUUID": call_uuid, "Machine": "true"}
    url, client = await set_up_call(http, base, "vonage", call=placed.call_id)
    event = {"uuid": placed.call_id, "status": "machine", "sub_state": "beep_start"}
    return url, client, create.json["event_url"][0], event


@pytest.mark.parametrize("name", PROVIDERS)
def test_place_call_streams_the_answered_call_to_the_bot_and_a_machine_verdict_leaves_the_voicemail(name: str) -> None:
    async def main() -> tuple[Any, ...]:
        side = BotSide()
        with FakeOpenAIServer(transcripts=[], chat_replies=[]) as fake:
            async with FakeProviderAPI() as api:
                server = app(fake, api, side)
                async with serve(server) as hostport, httpx.AsyncClient() as http:
                    base = f"http://{hostport}"
                    limiter = OutboundLimiter(max_concurrent=1, per_second=5)
                    placed = await place_call(
                        name, CALLEE, OURS, bot=base, api_base=api.base_url, limiter=limiter,
                        live_calls=server.state.live_calls, **DIAL_CREDENTIALS[name],
                    )  # fmt: skip
                    [create] = api.control_requests("create_call")
                    assert_documented_create(name, create, base)
                    assert limiter.active == 1
                    url, client, amd_url, amd = await answer(http, api, base, name, placed, create)
                    call = asyncio.create_task(
                        simulate_call(
                            url, provider=client, script=[WaitForHangup(timeout=20)], api=api, max_duration_s=30
                        )
                    )
                    while not side.transports:  # noqa: ASYNC110 (the bot appends its transport when the stream starts)
                        await asyncio.sleep(0.02)
                    assert side.transports[0].verified  # the stream carried a valid token for this call
                    assert (await signed_post(http, name, amd_url, amd)).status_code == 204
                    report = await call
                    await _bot_done(side)
                speech = [r.json["input"] for r in fake.speech_requests]
        return report, client, api, side, speech

    report, client, api, side, speech = asyncio.run(main())
    text = report.render_text()
    assert report.completed and report.errors == [], text
    assert [f.result for f in side.amd] == ["machine"] and side.amd[0].provider == name
    assert speech == [GREETING, VOICEMAIL]
    assert report.hangup == "rest" and report.audio_received_s - report.audio_played_s < 0.05, text
    assert side.finished == ["done"]
