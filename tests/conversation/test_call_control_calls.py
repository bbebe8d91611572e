"""Call control end to end, per provider: real server, simulated caller, fake OpenAI and a
fake provider REST API that answers like the provider and follows the call.

Each call is set up through the server's signed webhook (so the stream token verifies the
call id and REST requests are allowed), then the LLM is scripted to call the tool.
"""

from __future__ import annotations

import asyncio
import base64
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
from phonewire.services.call_control import register_call_control
from phonewire.services.openai import OpenAILLMService, OpenAISTTService, OpenAITTSService
from phonewire.testing import FakeProviderAPI, Say, WaitForBotReply, WaitForHangup, builtin_recording, simulate_call
from phonewire.testing.fakes import FakeOpenAIServer, TextReply, ToolCall, ToolCallsReply
from phonewire.testing.providers import PlivoClient, ProviderClient, TelnyxClient, TwilioClient, VonageClient
from server_harness import serve
from signed_webhooks import ACCOUNT_SID, TWILIO_TOKEN, credentials, signed_answer

pytestmark = pytest.mark.slow

PROVIDERS = ("twilio", "telnyx", "plivo", "vonage")
SALES = "+14155550100"
SECRET = "phonewire-test-stream-secret-0123456789"
HELLO = builtin_recording("hello")
GREETING = "Hello, how can I help?"
ANNOUNCEMENT = "One moment, I am connecting you to sales."
GOODBYE = "Thanks for calling, goodbye."


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


async def set_up_call(http: httpx.AsyncClient, base: str, name: str) -> tuple[str, ProviderClient]:
    """Ask the server's signed webhook for the stream, as the provider would."""
    if name == "twilio":
        call = "CA" + uuid.uuid4().hex
        doc = ET.fromstring(
            (await signed_answer(http, base, "twilio", {"CallSid": call, "AccountSid": ACCOUNT_SID})).text
        )
        stream = doc.find("./Connect/Stream")
        assert stream is not None
        params = {p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")}
        return stream.get("url", ""), TwilioClient(account_sid=ACCOUNT_SID, call_sid=call, custom_parameters=params)
    if name == "telnyx":
        call = "v3:" + uuid.uuid4().hex
        doc = ET.fromstring((await signed_answer(http, base, "telnyx", {"CallControlId": call})).text)
        stream = doc.find("./Connect/Stream")
        assert stream is not None
        params = {p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")}
        return stream.get("url", ""), TelnyxClient(call_control_id=call, custom_parameters=params)
    if name == "plivo":
        call = str(uuid.uuid4())
        doc = ET.fromstring((await signed_answer(http, base, "plivo", {"CallUUID": call})).text)
        stream = doc.find("./Stream")
        assert stream is not None
        params = dict(p.split("=", 1) for p in stream.get("extraHeaders", "").split(";"))
        client = PlivoClient(call_id=call, account_id="MAAUTH", custom_parameters=params,
                             content_type=stream.get("contentType", ""))  # fmt: skip
        return (stream.text or "").strip(), client
    call = str(uuid.uuid4())
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
