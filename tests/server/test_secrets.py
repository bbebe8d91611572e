"""Secrets never appear in logs or reprs, even through a whole call with a hang-up."""

from __future__ import annotations

import asyncio
import logging

import pytest

from phonewire.serializers.telnyx import TelnyxFrameSerializer
from phonewire.serializers.twilio import TwilioFrameSerializer
from phonewire.server import ServerConfig
from phonewire.telephony.tokens import StreamTokenSigner
from support.bots import KeypadBot
from support.echo_app import make_app
from support.server_harness import serve
from support.wire import WireClient
from transports.test_fastapi_control import fake_twilio_api

TOKEN = "sup3r-s3cret-auth-t0ken"


def test_configs_serializers_and_signers_keep_secrets_out_of_their_repr() -> None:
    config = ServerConfig(
        twilio_auth_token=TOKEN,
        stream_secret=TOKEN * 2,
        plivo_auth_token=TOKEN,
        telnyx_public_key=TOKEN,
        vonage_signature_secret=TOKEN,
    )
    objects = [
        config,
        TwilioFrameSerializer("MZ", "CA", "AC", TOKEN),
        TelnyxFrameSerializer("st", api_key=TOKEN, call_control_id="v2:x"),
        StreamTokenSigner(TOKEN * 2),
    ]
    for obj in objects:
        assert TOKEN not in repr(obj), type(obj).__name__


def test_a_full_call_with_a_hang_up_logs_no_credential(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def main() -> str | None:
        api, _ = fake_twilio_api()
        async with serve(api) as api_host:
            app, calls = make_app(
                bot=lambda call: KeypadBot(b""),
                serializer_kwargs={"auth_token": TOKEN, "base_url": f"http://{api_host}"},
            )
            async with serve(app) as hostport:
                client = await WireClient.connect(hostport, respond=False)
                await client.handshake()
                await client.dtmf("#")
                await calls[0].wait_finished(8)
                await client.close()
            return calls[0].transport.stats.hangup

    assert asyncio.run(main()) == "done"
    assert TOKEN not in caplog.text
