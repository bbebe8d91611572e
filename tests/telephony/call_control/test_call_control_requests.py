"""Call-control request builders (sans-I/O), the fake API's answers, the limiter and `phonewire dial`."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs

import pytest

from phonewire.cli import main as cli_main
from phonewire.exceptions import ConfigurationError
from phonewire.frames import TransferCallFrame
from phonewire.serializers.exotel import ExotelFrameSerializer
from phonewire.serializers.twilio import TwilioFrameSerializer
from phonewire.telephony.call_control import CallController, Unsupported, perform, plivo, telnyx, twilio, vonage
from phonewire.telephony.call_control.outbound import OutboundLimiter, OutboundLimitError, build_create_request
from phonewire.telephony.call_control.target import call_target
from phonewire.testing import FakeProviderAPI

ACCOUNT = "AC" + "1" * 32
CALL = "CA" + "2" * 32


def twilio_serializer(base: str = "http://api.test", call_sid: str = CALL) -> TwilioFrameSerializer:
    return TwilioFrameSerializer("MZ1", call_sid=call_sid, account_sid=ACCOUNT, auth_token="tok", base_url=base)


def test_a_target_comes_only_from_well_formed_ids_and_configured_credentials() -> None:
    target = call_target(twilio_serializer())
    assert target.call_url == f"http://api.test/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}.json"
    assert target.headers["Authorization"].startswith("Basic ") and "tok" not in repr(target)
    with pytest.raises(Unsupported, match="invalid call_sid"):
        call_target(twilio_serializer(call_sid=f"{CALL}/../CA{'9' * 32}"))
    with pytest.raises(Unsupported, match="exotel"):
        call_target(ExotelFrameSerializer("MZ1", call_sid="CA1"))


def test_twilio_transfer_is_dial_twiml_with_escaped_values() -> None:
    request = twilio.transfer_request(call_target(twilio_serializer()), "+1415<555>", caller_id='+1"x')
    assert request.method == "POST" and request.form is not None
    assert request.form["Twiml"] == (
        '<Response><Dial timeout="30" callerId=\'+1"x\'><Number>+1415&lt;555&gt;</Number></Dial></Response>'
    )
    sip = twilio.transfer_request(call_target(twilio_serializer()), "sip:agent@example.com")
    assert sip.form is not None and "<Sip>sip:agent@example.com</Sip>" in str(sip.form["Twiml"])


def test_each_providers_results_are_normalised() -> None:
    assert twilio.amd_result("machine_end_beep") == ("machine", True)
    assert twilio.amd_result("human") == ("human", False)
    assert twilio.normalise_status({"CallStatus": "in-progress"}) == "answered"
    assert telnyx.amd_result("call.machine.detection.ended", {"result": "not_sure"}) == ("unknown", False)
    assert telnyx.event_status("call.hangup", {"hangup_cause": "busy"}) == "busy"
    assert plivo.amd_result({"Machine": "true"}) == ("machine", False)
    assert vonage.event_status({"status": "unanswered"}) == "no-answer"
    assert vonage.amd_result({"status": "machine", "sub_state": "beep_start"}) == ("machine", True)


def test_create_requests_need_credentials_and_refuse_exotel() -> None:
    with pytest.raises(ConfigurationError, match="TELNYX_API_KEY"):
        build_create_request("telnyx", "+1", "+2", "https://bot", "pwout-abcdefgh", amd=True)
    with pytest.raises(ConfigurationError, match="Exotel"):
        build_create_request("exotel", "+1", "+2", "https://bot", "pwout-abcdefgh", amd=True)


def test_an_unverified_call_never_reaches_the_api_and_warm_transfer_is_twilio_only() -> None:
    async def scenario() -> None:
        async with FakeProviderAPI() as api:
            unverified = CallController(twilio_serializer(api.base_url), verified=False)
            result = await unverified.transfer(TransferCallFrame(to="+14155550100"))
            assert not result.ok and "not verified" in result.detail and api.requests == []
            exotel = CallController(ExotelFrameSerializer("MZ1", call_sid="CA1"), verified=True)
            assert "Connect applet" in (await exotel.transfer(TransferCallFrame(to="+1"))).detail
            warm = CallController(twilio_serializer(api.base_url), verified=True)
            assert "callback routes" in (await warm.transfer(TransferCallFrame(to="+1", warm=True))).detail

    asyncio.run(scenario())


def test_the_fake_api_answers_like_each_provider_and_can_fail() -> None:
    async def scenario() -> None:
        async with FakeProviderAPI() as api:
            target = call_target(twilio_serializer(api.base_url))
            ok = await perform(twilio.transfer_request(target, "+14155550100"))
            assert ok.ok and ok.body["sid"] == CALL
            [seen] = api.control_requests("transfer")
            assert seen.transfer_to == "+14155550100" and seen.provider == "twilio"
            api.fail("transfer", 400)
            refused = await perform(twilio.transfer_request(target, "+14155550100"))
            assert (refused.ok, refused.status, refused.body["code"]) == (False, 400, 21211)
            api.fail("dtmf", 503)
            retried = await perform(twilio.dtmf_request(target, "12", then_twiml="<Response></Response>"), timeout=1)
            assert retried.status == 503 and len(api.control_requests("dtmf")) == 2  # one retry on 5xx

    asyncio.run(scenario())


def test_the_limiter_bounds_concurrency_and_frees_a_slot_on_a_final_status() -> None:
    async def scenario() -> None:
        limiter = OutboundLimiter(max_concurrent=1, per_second=100, max_wait_secs=0.2)
        await limiter.acquire("pwout-a")
        with pytest.raises(OutboundLimitError):
            await limiter.acquire("pwout-b")

        class Final:
            status = "busy"

        limiter.on_event(Final(), "pwout-a")
        async with asyncio.timeout(2):
            await limiter.acquire("pwout-b")
        assert limiter.active == 1

    asyncio.run(scenario())


def test_phonewire_dial_places_the_call_with_credentials_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tok")

    async def serve_api() -> tuple[int, FakeProviderAPI]:
        async with FakeProviderAPI() as api:
            argv = ["dial", "--provider", "twilio", "--to", "+15550001111", "--from", "+15550002222"]
            argv += ["--bot", "https://bot.example.com", "--api-base", api.base_url]
            code = await asyncio.to_thread(cli_main, argv)
            return code, api

    code, api = asyncio.run(serve_api())
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    [create] = api.control_requests("create_call")
    form = parse_qs(create.body.decode())
    assert printed["call_id"] == create.reply["sid"] and form["Url"] == ["https://bot.example.com/webhooks/twilio"]
    assert "tok" not in json.dumps(printed)
