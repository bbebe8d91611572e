"""RealtimeConnection.send: no timer per packet when websockets cannot wait, the send timeout
as before when it can (a paused transport, a closing connection)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.protocol import State

from phonewire.services.openai.realtime.connection import RealtimeConnection, writes_at_once
from phonewire.services.openai.realtime.events import RealtimeSessionConfig


class _Socket:
    def __init__(self, *, state: State = State.OPEN, paused: bool = False, stuck: bool = False) -> None:
        self.state, self.paused, self.send_in_progress, self.stuck = state, paused, None, stuck
        self.sent: list[str] = []

    async def send(self, text: str) -> None:
        if self.stuck:
            await asyncio.Event().wait()  # a peer that stopped reading: only the timeout ends it
        self.sent.append(text)


def _conn(ws: Any) -> RealtimeConnection:
    conn = RealtimeConnection(ws, RealtimeSessionConfig(), {})
    conn.send_timeout_secs = 0.05
    return conn


def test_an_open_unpaused_socket_is_written_at_once() -> None:
    ws = _Socket()
    assert writes_at_once(ws)  # type: ignore[arg-type]
    asyncio.run(_conn(ws).send("x"))
    assert ws.sent == ["x"]


@pytest.mark.parametrize("ws", [_Socket(paused=True, stuck=True), _Socket(state=State.CLOSING, stuck=True)])
def test_a_send_that_may_wait_is_still_bounded(ws: _Socket) -> None:
    assert not writes_at_once(ws)  # type: ignore[arg-type]
    with pytest.raises(TimeoutError):
        asyncio.run(_conn(ws).send("x"))


def test_a_socket_without_those_attributes_counts_as_may_wait() -> None:
    class Bare:
        state = State.OPEN

    assert not writes_at_once(Bare())  # type: ignore[arg-type]
