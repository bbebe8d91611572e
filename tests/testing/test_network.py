"""Network impairments: the Uplink alone, then whole calls through a lossy, jittery, reordering link."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from phonewire.audio.analysis import tone
from phonewire.exceptions import ConfigurationError
from phonewire.testing import NetworkConditions, Say, Silence, WaitForBotReply, simulate_call
from phonewire.testing.network import Uplink
from testing.fake_bot import BotConfig, FakeBot, run


async def deliver(conditions: NetworkConditions, messages: list[tuple[str, bool]]) -> tuple[list[str], Uplink]:
    """Push ``(message, is_media)`` through an uplink at once; return what arrived, in order."""
    received: list[str] = []

    async def send(message: str | bytes) -> None:
        received.append(str(message))

    start = time.monotonic()
    uplink = Uplink(conditions, send, lambda: time.monotonic() - start)
    task = asyncio.create_task(uplink.run())
    for message, media in messages:
        uplink.submit(message, media=media)
    await uplink.drain()
    task.cancel()
    return received, uplink


def media(n: int) -> list[tuple[str, bool]]:
    return [(f"m{i}", True) for i in range(n)]


def test_loss_drops_only_media_and_counts_it() -> None:
    received, uplink = run(deliver(NetworkConditions(loss=1.0), [*media(5), ("dtmf", False), ("stop", False)]))
    assert received == ["dtmf", "stop"]
    assert uplink.stats.media_dropped == 5


def test_control_messages_are_impaired_only_when_asked() -> None:
    conditions = NetworkConditions(loss=1.0, impair_control=True)
    received, uplink = run(deliver(conditions, [("dtmf", False)]))
    assert received == [] and uplink.stats.control_dropped == 1


def test_reorder_swaps_a_message_with_its_successor() -> None:
    received, uplink = run(deliver(NetworkConditions(reorder=1.0), media(4)))
    assert received == ["m1", "m0", "m3", "m2"]
    assert uplink.stats.messages_reordered == 2


def test_jitter_delays_messages_but_keeps_their_order_as_tcp_does() -> None:
    received, uplink = run(deliver(NetworkConditions(jitter_ms=30, seed=3), media(30)))
    assert received == [f"m{i}" for i in range(30)]
    assert 5 < uplink.stats.max_delay_ms <= 30 + 5


def test_the_same_seed_gives_the_same_impairments() -> None:
    conditions = NetworkConditions(loss=0.3, reorder=0.3, seed=7)
    assert run(deliver(conditions, media(40)))[0] == run(deliver(conditions, media(40)))[0]


def test_a_stall_holds_everything_until_it_ends() -> None:
    async def scenario() -> float:
        start = time.monotonic()
        received, uplink = await deliver(NetworkConditions(stall_at_s=0.0, stall_ms=150), [("start", False)])
        assert received == ["start"] and uplink.stats.messages_stalled == 1
        return time.monotonic() - start

    assert 0.14 < run(scenario()) < 1.0


def test_once_the_socket_is_gone_drain_returns_and_new_messages_are_ignored() -> None:
    async def scenario() -> None:
        async def broken(message: str | bytes) -> None:
            raise ConnectionResetError

        uplink = Uplink(NetworkConditions(), broken, lambda: 0.0)
        task = asyncio.create_task(uplink.run())
        uplink.submit("m0", media=True)
        with pytest.raises(ConnectionResetError):
            await task
        uplink.submit("m1", media=True)
        await uplink.drain()

    run(scenario(), timeout=2)


@pytest.mark.parametrize("kwargs", [{"loss": 1.5}, {"reorder": -0.1}, {"jitter_ms": -1}, {"stall_ms": 100}])
def test_impossible_conditions_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        NetworkConditions(**kwargs)


SCRIPT = [Say(tone(400, 0.4, 8000)), WaitForBotReply(timeout=4, min_silence=0.3), Silence(0.2)]


def media_seen_by_bot(bot: FakeBot) -> list[dict]:
    return bot.calls[0].events("media")


def test_a_call_over_a_jittery_lossy_link_still_completes_and_counts_the_loss() -> None:
    async def scenario() -> None:
        async with FakeBot(BotConfig(greeting_s=0)) as bot:
            network = NetworkConditions(jitter_ms=40, loss=0.05, seed=11)
            report = await simulate_call(bot.url, script=SCRIPT, network=network)
            await bot.calls[0].finished.wait()
        assert report.completed, report.errors
        packets_sent = round(report.audio_sent_s / 0.02)
        assert report.audio_sent_s == pytest.approx(report.duration_s, abs=0.05)  # loss never shortens the call
        assert report.media_dropped > 0
        assert len(media_seen_by_bot(bot)) == packets_sent - report.media_dropped
        assert report.turns and report.turns[0].response_latency_ms is not None

    run(scenario())


def test_reordering_delivers_media_out_of_sequence() -> None:
    async def scenario() -> None:
        async with FakeBot(BotConfig(greeting_s=0)) as bot:
            report = await simulate_call(bot.url, script=[Silence(0.6)], network=NetworkConditions(reorder=0.2, seed=5))
            await bot.calls[0].finished.wait()
        numbers = [int(m["sequenceNumber"]) for m in media_seen_by_bot(bot)]
        assert report.completed and report.messages_reordered > 0
        assert numbers != sorted(numbers) and sorted(numbers) == list(range(2, 2 + len(numbers)))

    run(scenario())


def test_a_disconnect_drops_the_socket_and_the_call_does_not_complete() -> None:
    async def scenario() -> None:
        async with FakeBot(BotConfig(greeting_s=0)) as bot:
            network = NetworkConditions(disconnect_at_s=0.3)
            report = await simulate_call(bot.url, script=[Silence(5)], network=network)
            await bot.calls[0].finished.wait()
        assert not report.completed
        assert "disconnect" in report.end_reason and report.hangup == "none"
        assert report.close_code == 1006
        assert report.duration_s == pytest.approx(0.3, abs=0.1)
        assert not bot.calls[0].stopped  # no stop message: the line just went dead
        assert all(json.dumps(m) for m in bot.calls[0].messages)

    run(scenario())
