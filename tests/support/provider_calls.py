"""The end-to-end call scenarios every provider's tests share (tests/providers/test_e2e_*.py).

Each runs a real server (``support.echo_app.make_app`` under ``support.server_harness.serve``)
against a ``WireClient`` speaking one provider and returns what the test asserts on:

* ``echo_call``: the caller speaks a tone and hears it echoed, then the call ends as the provider
  ends it (``stop``, or the socket just closes); ``assert_clean_call`` checks what every such call
  must show;
* ``goodbye_call``: the caller presses 1 (the bot speaks) and # (the bot ends the call): the bot's
  hang-up; ``rest_goodbye_call`` the same through a fake of the provider's REST API;
* ``keypad_call``: key presses reach a bot that only listens;
* ``utterance``: the caller presses 1 and the bot's speech is received until it stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from phonewire.audio.analysis import tone
from phonewire.testing.providers import ProviderClient
from support.bots import KeypadBot
from support.calls import cancel_on_disconnect, dtmf_frames, fake_rest_api, wait_until
from support.echo_app import Call, make_app
from support.server_harness import serve
from support.wire import WireClient

#: Plivo and Vonage have no stop message; whichever side notices the closed socket first says why.
CLOSED_BY_PEER = ("client disconnected", "send failed")


async def echo_call(
    provider: str,
    client: ProviderClient,
    *,
    pcm: bytes,
    send_stop: bool = True,
    opening: Callable[[WireClient], Awaitable[None]] | None = None,
) -> tuple[Call, WireClient]:
    """A call that streams ``pcm`` in real time, hears it echoed, and ends: the client sends its
    stop (``send_stop``) or just closes the socket. ``opening`` replaces the client's handshake."""
    app, calls = make_app(
        providers=[provider],
        handlers=("on_client_connected", "on_client_disconnected"),
        on_transport=cancel_on_disconnect,
    )
    async with serve(app) as hostport:
        wire = await WireClient.connect(hostport, client)
        await (opening(wire) if opening is not None else wire.handshake())
        await wire.stream_audio(pcm)
        await wire.expect_audio()
        await _end(wire, send_stop=send_stop)
        await wait_until(lambda: calls[0].finished, what="the call to finish")
        await wire.close()
    return calls[0], wire


def assert_clean_call(call: Call, wire: WireClient, *, audio_in_ms: float) -> None:
    """Both connection events, no protocol or internal error, all the caller's audio, and nothing
    the real provider would have rejected."""
    assert call.transport is not None
    assert [e[0] for e in call.events] == ["on_client_connected", "on_client_disconnected"]
    stats = call.transport.stats
    assert stats.protocol_error_count == 0 and stats.internal_errors == 0
    assert stats.audio_in_ms == pytest.approx(audio_in_ms)
    assert wire.violations == []


def goodbye_bot(call: Call) -> KeypadBot:
    """'1': 0.3 s of speech, '#': the bot ends the call."""
    return KeypadBot(tone(300, 0.3, 24000))


@dataclass
class Goodbye:
    """What ``goodbye_call`` saw: the close code, the call, and the provider's side."""

    code: int | None
    call: Call
    wire: WireClient

    @property
    def hangup(self) -> str | None:
        assert self.call.transport is not None
        return self.call.transport.stats.hangup


async def goodbye_call(
    provider: str, client: ProviderClient, serializer_kwargs: dict[str, Any] | None = None
) -> Goodbye:
    """The caller presses 1 then #: the bot says goodbye and ends the call; returns once the
    server closed the socket and the call finished."""
    app, calls = make_app(bot=goodbye_bot, providers=[provider], serializer_kwargs=serializer_kwargs)
    async with serve(app) as hostport:
        wire = await WireClient.connect(hostport, client)
        await wire.handshake()
        await wire.dtmf("1")
        await wire.dtmf("#")
        code = await wire.wait_closed(timeout=5.0)
        await wait_until(lambda: calls[0].finished, what="the call to finish")
    return Goodbye(code, calls[0], wire)


def rest_goodbye_call(
    provider: str,
    client: ProviderClient,
    serializer_kwargs: Callable[[str], dict[str, Any]],
    *,
    status: int = 200,
    body: bytes = b"{}",
) -> dict[str, Any]:
    """``goodbye_call`` with the provider's REST API played by a fake answering ``status`` and
    ``body``; ``serializer_kwargs(base_url)`` points the serializer at it. Asserts the server
    closed normally after exactly one hang-up request, sent once the goodbye had played, and
    returns that request."""

    async def main() -> tuple[Goodbye, list[dict[str, Any]]]:
        api, seen = fake_rest_api(status, body)
        async with serve(api) as api_host:
            return await goodbye_call(provider, client, serializer_kwargs(f"http://{api_host}")), seen

    goodbye, seen = asyncio.run(main())
    assert goodbye.code == 1000
    assert len(seen) == 1
    assert seen[0]["at"] >= goodbye.wire.audio[-1][0]  # the goodbye was played before hanging up
    assert goodbye.hangup == "done"
    return seen[0]


async def keypad_call(
    provider: str, client: ProviderClient, press: Callable[[WireClient], Awaitable[None]], *, digits: int
) -> tuple[Call, WireClient]:
    """``press`` sends key presses to a bot that only listens; once ``digits`` DTMF frames reached
    it the call ends as the provider ends it (its stop, else the socket closes)."""
    app, calls = make_app(bot=lambda call: KeypadBot(b""), providers=[provider])
    async with serve(app) as hostport:
        wire = await WireClient.connect(hostport, client)
        await wire.handshake()
        await press(wire)
        await wait_until(lambda: len(dtmf_frames(calls[0])) == digits, what=f"{digits} digits")
        await _end(wire, send_stop=client.stop_message() is not None)
        await wait_until(lambda: calls[0].finished, what="the call to finish")
        await wire.close()
    return calls[0], wire


async def _end(wire: WireClient, *, send_stop: bool) -> None:
    if send_stop:
        await wire.stop()
    else:
        await wire.close()


async def utterance(provider: str, client: ProviderClient, seconds: float) -> WireClient:
    """The caller presses 1 and receives ``seconds`` of the bot's 24 kHz speech until it stops."""
    app, _ = make_app(bot=lambda call: KeypadBot(tone(300, seconds, 24000)), providers=[provider])
    async with serve(app) as hostport:
        wire = await WireClient.connect(hostport, client)
        await wire.handshake()
        await wire.dtmf("1")
        await wire.pump(3.0, idle=0.3)
        await wire.close()
    return wire
