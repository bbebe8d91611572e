"""A small fake voice bot speaking the server side of Twilio Media Streams, for the simulator's tests.

It is an echo bot: it greets with a tone, detects the caller's utterances by energy, and
after each one plays it back followed by a mark. While its audio is still playing (a mark
is outstanding) and the caller starts talking, it sends ``clear``, as a bot with barge-in
does. Key presses are answered with a tone; the hang-up digit ends the call by closing the
socket or over the (fake) REST API. Misbehaviour switches make it break the protocol on
purpose.

The real phonewire server is tested against the simulator elsewhere; this bot exists so the
simulator's tests do not depend on it.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from phonewire.audio.analysis import rms_dbfs, tone
from phonewire.audio.g711 import pcm_to_ulaw, ulaw_to_pcm

RATE = 8000
FRAME_BYTES = 320  # 20 ms of s16le at 8 kHz
VOICED_DBFS = -40.0


@dataclass
class BotConfig:
    greeting_s: float = 0.3
    reply_delay_s: float = 0.1
    end_of_speech_s: float = 0.3
    max_reply_s: float = 10.0  # echo at most this much of an utterance (keeps tests short)
    clear_on_barge_in: bool = True
    dtmf_tone_s: float = 0.0
    hangup_digit: str = "#"
    hangup_via: Literal["close", "rest"] = "close"
    api_base_url: str | None = None
    account_sid: str = "ACtest"
    auth_token: str = "secret-token"
    misbehave: tuple[str, ...] = ()  # "binary", "bad_event", "wrong_stream", "no_stream", "crash"


@dataclass
class BotCall:
    """What one connection to the bot saw."""

    headers: dict[str, str]
    messages: list[Any] = field(default_factory=list)
    stream_sid: str | None = None
    call_sid: str | None = None
    marks_sent: list[str] = field(default_factory=list)
    marks_echoed: list[str] = field(default_factory=list)
    clears_sent: int = 0
    digits: str = ""
    stopped: bool = False
    #: The caller closed the socket while the bot was still talking.
    closed_by_peer: bool = False
    hangup_status: int | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if isinstance(m, dict) and m.get("event") == name]

    @property
    def playing(self) -> bool:
        """True while some mark the bot sent has not come back: its audio is still playing."""
        return len(self.marks_echoed) < len(self.marks_sent)


class _EnergyVad:
    """Utterance = voiced 20 ms frames until ``end_of_speech_s`` of unvoiced ones."""

    def __init__(self, end_of_speech_s: float) -> None:
        self.hangover = round(end_of_speech_s / 0.02)
        self.buffer = bytearray()
        self.quiet = 0
        self.active = False

    def feed(self, pcm: bytes) -> tuple[bool, bytes | None]:
        """Returns (speech started on this frame, the utterance if it ended on this frame)."""
        voiced = rms_dbfs(pcm) > VOICED_DBFS
        started = voiced and not self.active
        if voiced:
            self.active, self.quiet = True, 0
        if not self.active:
            return started, None
        self.buffer += pcm
        self.quiet = 0 if voiced else self.quiet + 1
        if self.quiet < self.hangover:
            return started, None
        utterance = bytes(self.buffer[: len(self.buffer) - self.hangover * len(pcm)])
        self.buffer.clear()
        self.active = False
        return started, utterance


class FakeBot:
    """``async with FakeBot(BotConfig(...)) as bot:`` then call ``bot.url``."""

    def __init__(self, config: BotConfig | None = None) -> None:
        self.config = config or BotConfig()
        self.calls: list[BotCall] = []
        self._server: Server | None = None

    async def __aenter__(self) -> FakeBot:
        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/media"

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        call = BotCall(headers={k.lower(): v for k, v in ws.request.headers.raw_items()})
        self.calls.append(call)
        tasks: set[asyncio.Task[None]] = set()
        try:
            await self._converse(ws, call, tasks)
        except ConnectionClosed:
            call.closed_by_peer = True
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            call.finished.set()

    async def _converse(self, ws: ServerConnection, call: BotCall, tasks: set[asyncio.Task[None]]) -> None:
        for _ in range(2):  # connected, start
            call.messages.append(json.loads(await ws.recv()))
        start = call.messages[1]
        call.stream_sid, call.call_sid = start["streamSid"], start["start"]["callSid"]
        await self._misbehave(ws, call)
        if self.config.greeting_s:
            await self._play(ws, call, tone(440, self.config.greeting_s, RATE), "greeting")
        vad = _EnergyVad(self.config.end_of_speech_s)
        async for raw in ws:
            message = json.loads(raw)
            call.messages.append(message)
            if not await self._on_message(ws, call, message, vad, tasks):
                return

    async def _on_message(
        self,
        ws: ServerConnection,
        call: BotCall,
        message: dict[str, Any],
        vad: _EnergyVad,
        tasks: set[asyncio.Task[None]],
    ) -> bool:
        event = message["event"]
        if event == "media":
            started, utterance = vad.feed(ulaw_to_pcm(base64.b64decode(message["media"]["payload"])))
            if started and call.playing and self.config.clear_on_barge_in:
                await ws.send(json.dumps({"event": "clear", "streamSid": call.stream_sid}))
                call.clears_sent += 1
            if utterance:
                self._spawn(tasks, self._reply(ws, call, utterance))
        elif event == "mark":
            call.marks_echoed.append(message["mark"]["name"])
        elif event == "dtmf":
            return await self._on_digit(ws, call, message["dtmf"]["digit"], tasks)
        elif event == "stop":
            call.stopped = True
            return False
        return True

    async def _on_digit(self, ws: ServerConnection, call: BotCall, digit: str, tasks: set[asyncio.Task[None]]) -> bool:
        call.digits += digit
        if digit == self.config.hangup_digit:
            if self.config.hangup_via == "rest":
                await self._rest_hangup(call)
                return True  # the provider ends the call: wait for its stop
            await ws.close(1000)
            return False
        if self.config.dtmf_tone_s:
            self._spawn(tasks, self._play(ws, call, tone(660, self.config.dtmf_tone_s, RATE), f"dtmf-{digit}"))
        return True

    @staticmethod
    def _spawn(tasks: set[asyncio.Task[None]], coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _reply(self, ws: ServerConnection, call: BotCall, pcm: bytes) -> None:
        await asyncio.sleep(self.config.reply_delay_s)  # the bot "thinking": part of the behaviour
        reply = pcm[: 2 * round(self.config.max_reply_s * RATE)]
        await self._play(ws, call, reply, f"reply-{len(call.marks_sent) + 1}")

    async def _play(self, ws: ServerConnection, call: BotCall, pcm: bytes, mark: str) -> None:
        """Send ``pcm`` as 20 ms media messages in one burst, then a mark."""
        ulaw = pcm_to_ulaw(pcm)
        for offset in range(0, len(ulaw), FRAME_BYTES // 2):
            payload = base64.b64encode(ulaw[offset : offset + FRAME_BYTES // 2]).decode()
            await ws.send(json.dumps({"event": "media", "streamSid": call.stream_sid, "media": {"payload": payload}}))
        call.marks_sent.append(mark)
        await ws.send(json.dumps({"event": "mark", "streamSid": call.stream_sid, "mark": {"name": mark}}))

    async def _rest_hangup(self, call: BotCall) -> None:
        config = self.config
        assert config.api_base_url is not None
        url = f"{config.api_base_url}/2010-04-01/Accounts/{config.account_sid}/Calls/{call.call_sid}.json"
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.post(
                url, data={"Status": "completed"}, auth=(config.account_sid, config.auth_token)
            )
        call.hangup_status = response.status_code

    async def _misbehave(self, ws: ServerConnection, call: BotCall) -> None:
        media = {"payload": base64.b64encode(b"\xff" * 160).decode()}
        for kind in self.config.misbehave:
            if kind == "binary":
                await ws.send(b"\xff" * 160)
            elif kind == "bad_event":
                await ws.send(json.dumps({"event": "dance", "streamSid": call.stream_sid}))
            elif kind == "wrong_stream":
                await ws.send(json.dumps({"event": "media", "streamSid": "MZwrong", "media": media}))
            elif kind == "no_stream":
                await ws.send(json.dumps({"event": "clear"}))
            elif kind == "crash":
                await ws.close(1011, "bot crashed")


def run(coroutine: Any, timeout: float = 20.0) -> Any:
    """Run a test's coroutine on a fresh loop, bounded so a bug fails the test instead of hanging it."""

    async def bounded() -> Any:
        async with asyncio.timeout(timeout):
            return await coroutine

    return asyncio.run(bounded())
