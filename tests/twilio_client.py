"""A scriptable Twilio media-stream client for tests: exact wire format, fine control."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from phonewire.audio.g711 import pcm_to_ulaw, ulaw_to_pcm

STREAM_SID = "MZ00000000000000000000000000000001"
CALL_SID = "CA00000000000000000000000000000001"
ACCOUNT_SID = "AC00000000000000000000000000000001"


class TwilioTestClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seq = 0
        self.chunk = 0
        self.received: list[tuple[float, dict[str, Any]]] = []

    @classmethod
    async def connect(cls, hostport: str, path: str = "/ws", headers: dict[str, str] | None = None) -> TwilioTestClient:
        ws = await connect(
            f"ws://{hostport}{path}", compression=None, open_timeout=5, close_timeout=2, additional_headers=headers
        )
        return cls(ws)

    async def send(self, obj: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(obj if isinstance(obj, str | bytes) else json.dumps(obj))

    def _next_seq(self) -> str:
        self.seq += 1
        return str(self.seq)

    async def handshake(self, custom: dict[str, str] | None = None) -> None:
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.send(
            {
                "event": "start",
                "sequenceNumber": self._next_seq(),
                "start": {
                    "accountSid": ACCOUNT_SID,
                    "streamSid": STREAM_SID,
                    "callSid": CALL_SID,
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": custom or {},
                },
                "streamSid": STREAM_SID,
            }
        )

    async def media(self, pcm: bytes) -> None:
        self.chunk += 1
        payload = base64.b64encode(pcm_to_ulaw(pcm)).decode()
        await self.send(
            {
                "event": "media",
                "sequenceNumber": self._next_seq(),
                "media": {
                    "track": "inbound",
                    "chunk": str(self.chunk),
                    "timestamp": str(20 * self.chunk),
                    "payload": payload,
                },
                "streamSid": STREAM_SID,
            }
        )

    async def stream_audio(self, pcm: bytes, *, realtime: bool = True) -> None:
        """Send PCM16 8 kHz in 20 ms packets on a real-time clock (anchored, no drift)."""
        t0 = time.monotonic()
        for i in range(0, len(pcm), 320):
            if realtime:
                await asyncio.sleep(max(0.0, t0 + i / 16000 - time.monotonic()))
            await self.media(pcm[i : i + 320])

    async def dtmf(self, digit: str) -> None:
        await self.send(
            {
                "event": "dtmf",
                "streamSid": STREAM_SID,
                "sequenceNumber": self._next_seq(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def mark_echo(self, name: str) -> None:
        await self.send(
            {"event": "mark", "sequenceNumber": self._next_seq(), "streamSid": STREAM_SID, "mark": {"name": name}}
        )

    async def stop(self) -> None:
        await self.send(
            {
                "event": "stop",
                "sequenceNumber": self._next_seq(),
                "streamSid": STREAM_SID,
                "stop": {"accountSid": ACCOUNT_SID, "callSid": CALL_SID},
            }
        )

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            raw = await self.ws.recv()
        msg = json.loads(raw)
        self.received.append((time.monotonic(), msg))
        return msg  # type: ignore[no-any-return]

    async def recv_event(self, event: str, timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.recv(timeout)
                if msg.get("event") == event:
                    return msg

    async def collect_media(self, seconds: float, *, until_silence: float | None = None) -> list[tuple[float, bytes]]:
        """Receive media for up to ``seconds``; returns (arrival time, PCM16) per packet."""
        out: list[tuple[float, bytes]] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            wait = deadline - time.monotonic()
            if until_silence is not None and out:
                wait = min(wait, until_silence)
            try:
                msg = await self.recv(max(0.01, wait))
            except TimeoutError:
                if until_silence is not None and out:
                    break
                continue
            if msg.get("event") == "media":
                out.append((self.received[-1][0], ulaw_to_pcm(base64.b64decode(msg["media"]["payload"]))))
        return out

    async def close(self) -> None:
        await self.ws.close()


class TwilioHandset:
    """Plays the server's audio on a real-time clock like a phone and echoes each mark only
    when the audio before it has played (immediately if nothing is queued); on clear it
    drops what is queued and echoes pending marks at once, as Twilio does."""

    def __init__(self, client: TwilioTestClient) -> None:
        self.client = client
        self.play_end = 0.0  # when the queued audio will have played (monotonic)
        self.played_at_clear: list[float] = []  # ms of the current utterance heard when each clear came
        self.utterance_start: float | None = None
        self.clear_times: list[float] = []
        self.audio_ms = 0.0
        self._pending: list[tuple[float, str]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            timeout = None
            if self._pending:
                timeout = max(0.0, self._pending[0][0] - time.monotonic())
            try:
                async with asyncio.timeout(timeout):
                    msg = await self.client.recv(timeout=3600)
            except TimeoutError:
                await self._due_marks()
                continue
            await self._on(msg)
            await self._due_marks()

    async def _on(self, msg: dict[str, Any]) -> None:
        now = time.monotonic()
        event = msg.get("event")
        if event == "media":
            pcm = ulaw_to_pcm(base64.b64decode(msg["media"]["payload"]))
            if self.play_end < now:  # the buffer ran dry: playback (re)starts now
                self.play_end = now
                self.utterance_start = self.utterance_start or now
            self.play_end += len(pcm) / 16000
            self.audio_ms += len(pcm) / 16
        elif event == "mark":
            self._pending.append((max(now, self.play_end), msg["mark"]["name"]))
        elif event == "clear":
            self.clear_times.append(now)
            heard_until = min(now, self.play_end)
            if self.utterance_start is not None:
                self.played_at_clear.append((heard_until - self.utterance_start) * 1000)
            self.play_end = now
            pending, self._pending = self._pending, []
            for _, name in pending:
                await self.client.mark_echo(name)

    async def _due_marks(self) -> None:
        now = time.monotonic()
        while self._pending and self._pending[0][0] <= now:
            _, name = self._pending.pop(0)
            await self.client.mark_echo(name)
