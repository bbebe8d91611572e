"""Edge cases found in review, each pinned by a test."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from phonewire.audio.analysis import silence, tone
from phonewire.audio.vad import SileroVADAnalyzer
from phonewire.audio.wav import read_wav
from phonewire.exceptions import ConfigurationError
from phonewire.frames import CancelFrame, EndFrame
from phonewire.serializers.twilio import TwilioFrameSerializer
from phonewire.serializers.vonage import VonageFrameSerializer
from phonewire.server import ServerConfig, create_app
from phonewire.transports import FastAPIWebsocketParams, FastAPIWebsocketTransport
from support.bots import KeypadBot
from support.echo_app import make_app
from support.server_harness import serve
from support.wire import WireClient
from transports.test_fastapi_control import fake_twilio_api

SPEECH = Path(__file__).parents[1] / "fixtures" / "speech" / "hello_8k.wav"


def test_the_providers_stop_after_our_own_hang_up_is_not_a_caller_disconnect() -> None:
    async def main() -> tuple[list[str], str]:
        api, _ = fake_twilio_api(delay=0.5)  # Twilio sends stop while our hang-up is in flight
        async with serve(api) as api_host:
            app, calls = make_app(
                bot=lambda call: KeypadBot(b""),
                handlers=("on_client_disconnected",),
                serializer_kwargs={"auth_token": "t", "base_url": f"http://{api_host}"},
            )
            async with serve(app) as hostport:
                client = await WireClient.connect(hostport, respond=False)
                await client.handshake()
                await client.dtmf("#")
                await asyncio.sleep(0.2)  # the scenario: stop arrives during the hang-up
                await client.stop()
                await calls[0].wait_finished(8)
                await client.close()
        last = type(calls[0].tail[-1][0]).__name__
        return [e[0] for e in calls[0].events], last

    events, last = asyncio.run(main())
    assert events == []
    assert last == EndFrame.__name__ and last != CancelFrame.__name__


def test_a_call_closed_for_silence_is_still_hung_up() -> None:
    async def main() -> str | None:
        api, seen = fake_twilio_api()
        async with serve(api) as api_host:
            app, calls = make_app(
                params={"no_media_timeout_secs": 0.4},
                serializer_kwargs={"auth_token": "t", "base_url": f"http://{api_host}"},
            )
            async with serve(app) as hostport:
                client = await WireClient.connect(hostport, respond=False)
                await client.handshake()
                await calls[0].wait_finished(8)
                await client.close()
        assert len(seen) == 1
        return calls[0].transport.stats.hangup

    assert asyncio.run(main()) == "done"


def test_a_minimum_speech_before_barge_in_is_honoured_with_batched_vad() -> None:
    async def main() -> float:
        pcm, _, _ = read_wav(SPEECH)
        app, calls = make_app(
            bot=lambda call: KeypadBot(tone(300, 4.0, 24000)),
            params={"vad_analyzer": SileroVADAnalyzer(), "interruption_min_speech_secs": 0.5},
        )
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport)
            await client.handshake()
            client.start_playing()
            await client.dtmf("1")
            await client.stream_audio(silence(0.5, 8000))
            onset = time.monotonic()
            await client.stream_audio(pcm[: 8000 * 2 * 2])
            await client.stop_playing()
            await client.close()
        assert client.clear_times, "no interruption"
        return client.clear_times[0] - onset

    # 0.5 s of speech from its onset (the VAD's 0.2 s start is part of it) plus the transport;
    # without the minimum the clear comes ~0.2 s after the onset
    assert 0.45 < asyncio.run(main()) < 0.9


def test_misconfigurations_fail_at_construction_not_in_the_middle_of_a_call() -> None:
    with pytest.raises(ConfigurationError):
        FastAPIWebsocketParams(audio_out_max_buffer_secs=0)
    with pytest.raises(ConfigurationError):
        create_app(lambda t, c: asyncio.sleep(0), ServerConfig(require_stream_token=True, stream_secret=None))
    with pytest.raises(ConfigurationError):
        create_app(lambda t, c: asyncio.sleep(0), ServerConfig(transport_params={"sesion_timeout": 3}))
    ulaw = TwilioFrameSerializer("MZ")
    with pytest.raises(ConfigurationError):  # fine for μ-law (1 byte a sample) ...
        FastAPIWebsocketTransport(
            object(),
            FastAPIWebsocketParams(
                serializer=VonageFrameSerializer(),  # type: ignore[arg-type]
                fixed_audio_packet_size=641,
            ),
        )
    FastAPIWebsocketTransport(object(), FastAPIWebsocketParams(serializer=ulaw, fixed_audio_packet_size=641))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):  # ... but Vonage frames are exact raw PCM
        FastAPIWebsocketTransport(
            object(),
            FastAPIWebsocketParams(
                serializer=VonageFrameSerializer(),  # type: ignore[arg-type]
                add_wav_header=True,
            ),
        )


def test_server_config_repr_names_credentials_but_never_shows_them() -> None:
    config = ServerConfig(serializer_kwargs={"twilio": {"auth_token": "hunter2-secret", "base_url": "http://x"}})
    assert "hunter2-secret" not in repr(config) and "auth_token" in repr(config)


class StuckSocket:
    """A peer that stopped reading: every send blocks forever."""

    application_state = None

    async def send_text(self, data: str) -> None:
        await asyncio.Event().wait()


def test_a_send_to_a_peer_that_stopped_reading_gives_up_after_the_send_timeout() -> None:
    async def main() -> tuple[bool, float, str | None, list[str]]:
        params = FastAPIWebsocketParams(serializer=TwilioFrameSerializer("MZ"), ws_send_timeout=0.2)
        transport = FastAPIWebsocketTransport(StuckSocket(), params)  # type: ignore[arg-type]
        fired: list[str] = []
        transport.add_event_handler("on_client_disconnected", lambda t, ws: fired.append("gone"))
        transport.start_watchdog()
        t0 = time.monotonic()
        sent = await asyncio.wait_for(transport.send("hello"), 2)
        elapsed = time.monotonic() - t0
        await transport.cleanup()
        return sent, elapsed, transport.stats.close_reason, fired

    sent, elapsed, reason, fired = asyncio.run(main())
    assert not sent and reason == "send timeout" and fired == ["gone"]
    assert 0.2 <= elapsed < 0.6
