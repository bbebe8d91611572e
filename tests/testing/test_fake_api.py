"""FakeProviderAPI: Twilio's call-ending REST endpoint, recorded, with failure modes."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest

from phonewire.testing import FakeProviderAPI, Press, Silence, WaitForBotReply, WaitForHangup, simulate_call
from testing.fake_bot import BotConfig, FakeBot, run

PATH = "/2010-04-01/Accounts/AC123/Calls/CA456.json"
AUTH = ("AC123", "token-xyz")


async def post(api: FakeProviderAPI, path: str = PATH, timeout: float = 5.0) -> httpx.Response:
    async with httpx.AsyncClient(base_url=api.base_url, timeout=timeout) as client:
        return await client.post(path, data={"Status": "completed"}, auth=AUTH)


def test_a_hang_up_request_is_answered_like_twilio_and_recorded_with_its_auth_and_body() -> None:
    async def scenario() -> None:
        async with FakeProviderAPI() as api:
            response = await post(api)
        assert response.status_code == 200
        assert response.json() == {"sid": "CA456", "account_sid": "AC123", "status": "completed"}
        [request] = api.hangups("CA456")
        assert (request.method, request.path, request.provider) == ("POST", PATH, "twilio")
        assert request.form == {"Status": "completed"} and request.is_hangup
        expected = "Basic " + base64.b64encode(b"AC123:token-xyz").decode()
        assert request.headers["authorization"] == expected

    run(scenario())


def test_not_found_mode_answers_twilios_call_already_gone() -> None:
    async def scenario() -> None:
        async with FakeProviderAPI(mode="not_found") as api:
            response = await post(api)
        assert response.status_code == 404 and response.json()["code"] == 20404
        assert len(api.hangups()) == 1

    run(scenario())


def test_error_mode_answers_500() -> None:
    async def scenario() -> None:
        async with FakeProviderAPI(mode="error") as api:
            assert (await post(api)).status_code == 500

    run(scenario())


def test_hang_mode_never_answers_so_the_client_times_out_and_stop_still_returns() -> None:
    async def scenario() -> None:
        api = FakeProviderAPI(mode="hang")
        await api.start()
        with pytest.raises(httpx.ReadTimeout):
            await post(api, timeout=0.3)
        async with asyncio.timeout(2):
            await api.wait_for_hangup("CA456")
            await api.stop()

    run(scenario())


def test_requests_that_are_not_a_hang_up_are_recorded_but_not_counted_as_one() -> None:
    async def scenario() -> None:
        async with FakeProviderAPI() as api, httpx.AsyncClient(base_url=api.base_url) as client:
            redirect = await client.post(PATH, data={"Twiml": "<Response/>"})
            unknown = await client.get("/v1/whatever")
        assert redirect.status_code == 200 and unknown.status_code == 404
        assert len(api.requests) == 2 and api.hangups() == []

    run(scenario())


def test_a_rest_hang_up_by_the_bot_ends_the_simulated_call_with_a_stop_like_twilio() -> None:
    async def scenario() -> None:
        async with FakeProviderAPI() as api:
            config = BotConfig(greeting_s=0.1, hangup_via="rest", api_base_url=api.base_url)
            async with FakeBot(config) as bot:
                script = [WaitForBotReply(3, min_silence=0.2), Press("#"), WaitForHangup(3)]
                report = await simulate_call(bot.url, script=script, api=api)
                await bot.calls[0].finished.wait()
        assert report.completed and report.hangup == "rest"
        assert report.duration_s < 2.5  # ended by the API, not by the 3 s wait
        [request] = api.hangups(report.call_id)
        assert request.form["Status"] == "completed" and request.headers["authorization"].startswith("Basic ")
        assert bot.calls[0].hangup_status == 200 and bot.calls[0].stopped

    run(scenario())


def test_a_hang_up_the_api_refused_still_counts_as_a_rest_hang_up_but_the_caller_ended_the_call() -> None:
    async def scenario() -> None:
        async with FakeProviderAPI(mode="not_found") as api:
            config = BotConfig(greeting_s=0, hangup_via="rest", api_base_url=api.base_url)
            async with FakeBot(config) as bot:
                report = await simulate_call(bot.url, script=[Press("#"), Silence(0.3)], api=api)
        assert report.completed and report.hangup == "rest"
        assert "caller hung up" in report.end_reason  # the API did not end it: the script did
        assert bot.calls[0].hangup_status == 404

    run(scenario())


def test_base_url_needs_a_started_server() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = FakeProviderAPI().base_url
