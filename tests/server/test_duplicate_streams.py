"""A second stream for a live call (a provider reconnecting with the token it was given):
``duplicate_stream_policy="refuse"`` closes the new one with 1008 and the call goes on;
``"replace"`` closes the old stream (1000, no hang-up through the provider's API) and serves
the new one. A spent token for a call that is *not* live stays refused either way."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.processors import EchoProcessor
from phonewire.server import ServerConfig, create_app
from phonewire.testing import CallReport, FakeProviderAPI, HangUp, Silence, TwilioClient, simulate_call
from support.server_harness import serve
from support.signed_webhooks import ACCOUNT_SID, TWILIO_TOKEN, signed_answer

SECRET = "duplicate-stream-secret-0123456789"
SID = "CA" + "7" * 32


async def echo_bot(transport: Any, call: Any) -> None:
    task = PipelineTask(Pipeline([transport.input(), EchoProcessor(), transport.output()]))
    await PipelineRunner(handle_sigint=False).run(task)


async def _token(hostport: str, sid: str) -> str:
    form = {"CallSid": sid, "AccountSid": ACCOUNT_SID, "From": "+1555"}
    async with httpx.AsyncClient() as http:
        body = (await signed_answer(http, f"http://{hostport}", "twilio", form)).text
    match = re.search(r'name="phonewireToken" value="([^"]+)"', body)
    assert match, body
    return match.group(1)


def _call(hostport: str, token: str, secs: float, api: FakeProviderAPI, sid: str = SID) -> asyncio.Task[CallReport]:
    client = TwilioClient(account_sid=ACCOUNT_SID, call_sid=sid, custom_parameters={"phonewireToken": token})
    script = [Silence(secs), HangUp()]
    return asyncio.create_task(
        simulate_call(f"ws://{hostport}/ws", provider=client, script=script, max_duration_s=secs + 10, api=api)
    )


async def _until_live(app: Any, sid: str = SID) -> None:
    async with asyncio.timeout(5):
        while app.state.live_calls.get("twilio", sid) is None:  # noqa: ASYNC110 - no event to await
            await asyncio.sleep(0.02)  # bounded poll


def _run(policy: str) -> tuple[CallReport, CallReport, CallReport, int]:
    async def main() -> tuple[CallReport, CallReport, CallReport, int]:
        async with FakeProviderAPI() as api:
            config = ServerConfig(
                vad=None, stream_secret=SECRET, twilio_auth_token=TWILIO_TOKEN, duplicate_stream_policy=policy,
                serializer_kwargs={"twilio": {"auth_token": "tok", "base_url": api.base_url}},
            )  # fmt: skip
            app = create_app(echo_bot, config)
            async with serve(app) as hostport:
                token = await _token(hostport, SID)
                first = _call(hostport, token, 4.0, api)
                await _until_live(app)
                second = await _call(hostport, token, 1.0, api)
                old = await first
                other = "CA" + "8" * 32
                spent = await _token(hostport, other)
                await _call(hostport, spent, 0.3, api, sid=other)
                stale = await _call(hostport, spent, 0.3, api, sid=other)  # not live any more
                return old, second, stale, len(api.hangups(SID))

    return asyncio.run(main())


def test_refuse_closes_the_second_stream_and_keeps_the_first() -> None:
    old, second, stale, _ = _run("refuse")
    assert second.close_code == 1008, second.render_text()
    assert old.completed and old.duration_s > 3.5, old.render_text()
    assert stale.close_code == 1008


def test_replace_closes_the_old_stream_without_hanging_up_and_serves_the_new() -> None:
    old, second, stale, hangups = _run("replace")
    assert old.close_code == 1000 and old.duration_s < 3.5, old.render_text()
    assert second.completed and second.close_code != 1008, second.render_text()
    assert second.audio_received_s > 0.5, second.render_text()  # the new stream has a bot
    assert hangups == 0  # the call went on: the replaced stream's end hung nothing up
    assert stale.close_code == 1008  # a spent token for a call not live is a replay


def test_an_unknown_policy_is_refused_at_start_up() -> None:
    from phonewire.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError):
        create_app(echo_bot, ServerConfig(vad=None, duplicate_stream_policy="merge"))
