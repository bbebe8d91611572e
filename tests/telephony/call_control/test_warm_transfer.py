"""Twilio warm transfer: the person is dialled and briefed; the caller moves only once they answer."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

from phonewire.frames import CallStatusFrame, TransferCallFrame
from phonewire.serializers.twilio import TwilioFrameSerializer
from phonewire.server.live_calls import LiveCalls
from phonewire.telephony.call_control import CallController
from phonewire.testing import FakeProviderAPI

ACCOUNT = "AC" + "1" * 32
CALL = "CA" + "2" * 32
PERSON = "+14155550100"


def controller(api: FakeProviderAPI, live: LiveCalls) -> CallController:
    serializer = TwilioFrameSerializer(
        "MZ1", call_sid=CALL, account_sid=ACCOUNT, auth_token="tok", base_url=api.base_url
    )
    return CallController(
        serializer, verified=True, public_base="https://bot.example.com", waiters=live, own_number="+15550002222"
    )


async def _ref_of(api: FakeProviderAPI) -> str:
    create = await api.wait_for("create_call")
    callback = parse_qs(create.body.decode())["StatusCallback"][0]
    return parse_qs(urlsplit(callback).query)["ref"][0]


def test_the_caller_joins_the_conference_only_after_the_person_answered_the_briefing_call() -> None:
    async def scenario() -> None:
        live = LiveCalls()
        async with FakeProviderAPI() as api:
            frame = TransferCallFrame(to=PERSON, warm=True, summary="Jane wants a refund for order 42.")
            transfer = asyncio.create_task(controller(api, live).transfer(frame))
            async with asyncio.timeout(5):
                ref = await _ref_of(api)
            assert api.control_requests("transfer") == []  # the caller stays with the bot meanwhile
            await live.deliver("twilio", None, ref, CallStatusFrame(status="ringing"))
            await live.deliver("twilio", None, ref, CallStatusFrame(status="answered"))
            async with asyncio.timeout(5):
                result = await transfer
        assert result.ok and result.warm
        [create] = api.control_requests("create_call")
        form = parse_qs(create.body.decode())
        assert form["To"] == [PERSON] and form["From"] == ["+15550002222"]
        briefing = form["Twiml"][0]
        assert "<Say>Jane wants a refund for order 42.</Say>" in briefing
        assert 'startConferenceOnEnter="true"' in briefing
        [move] = api.control_requests("transfer", CALL)
        room = move.transfer_to
        assert room and room in briefing and 'startConferenceOnEnter="false"' in move.form["Twiml"]

    asyncio.run(scenario())


def test_a_person_who_does_not_answer_leaves_the_caller_with_the_bot() -> None:
    async def scenario() -> None:
        live = LiveCalls()
        async with FakeProviderAPI() as api:
            transfer = asyncio.create_task(controller(api, live).transfer(TransferCallFrame(to=PERSON, warm=True)))
            async with asyncio.timeout(5):
                ref = await _ref_of(api)
            await live.deliver("twilio", None, ref, CallStatusFrame(status="no-answer"))
            async with asyncio.timeout(5):
                result = await transfer
        assert not result.ok and "did not answer (no-answer)" in result.detail
        assert api.control_requests("transfer") == []

    asyncio.run(scenario())
