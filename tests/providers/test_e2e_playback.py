"""Playback acknowledgements and barge-in through a real server, the same contract for every
provider with acknowledgements (Twilio's are in tests/transports/test_fastapi_control.py): the
provider's echo of our last mark becomes BotStoppedSpeakingFrame(source=PROVIDER_ACK), and an
interruption sends the provider's clear before any further audio."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from phonewire.audio.analysis import tone
from phonewire.frames import PlaybackSource
from phonewire.testing.providers import ProviderClient
from support.bots import KeypadBot
from support.calls import bot_stopped, wait_until
from support.echo_app import make_app
from support.server_harness import serve
from support.wire import EXOTEL_STREAM_SID, PLIVO_STREAM_ID, WireClient, exotel, plivo, raw_pcm, telnyx, vonage


@dataclass(frozen=True)
class Provider:
    name: str
    client: Callable[[], ProviderClient]
    #: Is this received message one of our marks, as the provider's protocol carries it?
    is_mark: Callable[[Any], bool]
    #: And is it well formed (the stream it names, its fields)?
    mark_ok: Callable[[dict[str, Any]], bool]
    clear: dict[str, Any]
    #: Upper bound of heard_ms after ~0.3 s of bot speech (Exotel's chunks are 200 ms).
    heard_max_ms: int = 1200


def _event(name: str) -> Callable[[Any], bool]:
    return lambda m: isinstance(m, dict) and m.get("event") == name


PROVIDERS = [
    Provider(
        "exotel",
        exotel,
        _event("mark"),
        lambda m: m["stream_sid"] == EXOTEL_STREAM_SID,
        {"event": "clear", "stream_sid": EXOTEL_STREAM_SID},
        heard_max_ms=1400,
    ),
    Provider(
        "plivo",
        plivo,
        _event("checkpoint"),
        lambda m: m["streamId"] == PLIVO_STREAM_ID,
        {"event": "clearAudio", "streamId": PLIVO_STREAM_ID},
    ),
    Provider("telnyx", telnyx, _event("mark"), lambda m: "mark" in m, {"event": "clear"}),
    Provider(
        "vonage",
        vonage,
        lambda m: isinstance(m, dict) and m.get("action") == "notify",
        lambda m: set(m) == {"action", "payload"},
        {"action": "clear"},
    ),
    Provider("raw_pcm", raw_pcm, _event("mark"), lambda m: "name" in m, {"event": "clear"}),
]


@pytest.mark.parametrize("p", PROVIDERS, ids=[p.name for p in PROVIDERS])
def test_the_providers_mark_echoes_tell_the_bot_when_its_utterance_was_heard(p: Provider) -> None:
    async def main() -> tuple[WireClient, Any]:
        app, calls = make_app(bot=lambda call: KeypadBot(tone(300, 0.4, 24000)), providers=[p.name])
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, p.client())
            await client.handshake()
            await client.dtmf("1")
            await client.pump(3.0, idle=0.3)  # plays the audio, acknowledging each mark when reached
            await wait_until(lambda: bool(bot_stopped(calls[0])), what="BotStoppedSpeakingFrame")
            await client.close()
        return client, calls[0]

    client, call = asyncio.run(main())
    marks = [m for _, m in client.received if p.is_mark(m)]
    assert marks and all(p.mark_ok(m) for m in marks)
    stopped = bot_stopped(call)
    assert len(stopped) == 1
    assert stopped[0].source is PlaybackSource.PROVIDER_ACK
    assert not stopped[0].interrupted
    assert stopped[0].sent_ms == pytest.approx(400, abs=25)
    assert client.marks_received and client.acks_sent == client.marks_received
    assert call.transport.stats.marks_acked == call.transport.stats.marks_sent
    assert client.violations == []


@pytest.mark.parametrize("p", PROVIDERS, ids=[p.name for p in PROVIDERS])
def test_an_interruption_sends_the_providers_clear_and_no_audio_after_it(p: Provider) -> None:
    async def main() -> tuple[WireClient, Any, Any, list[Any]]:
        app, calls = make_app(bot=lambda call: KeypadBot(tone(300, 3.0, 24000)), providers=[p.name])
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, p.client())
            await client.handshake()
            await client.dtmf("1")
            await client.expect_audio()
            await client.pump(0.3)  # let the bot talk: the thing under test is the clear
            await client.dtmf("*")
            clear = await client.expect_clear(timeout=2.0)  # answered as the provider does, if it does
            after = await client.pump(0.4)
            await client.close()
        return client, calls[0], clear, after

    client, call, clear, after = asyncio.run(main())
    assert clear == p.clear
    assert [m for m in after if client.audio_payload(m) is not None] == []
    stats = call.transport.stats
    assert stats.clears_sent == 1 and stats.dropped_audio_ms > 1500
    assert stats.protocol_error_count == 0  # the provider's answer to the clear is understood
    stopped = bot_stopped(call)
    assert len(stopped) == 1 and stopped[0].interrupted  # flushed marks echoed on clear change nothing
    assert 200 < stopped[0].heard_ms < p.heard_max_ms
    assert client.violations == []
