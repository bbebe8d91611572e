"""Scriptable media-stream clients for the end-to-end tests: Telnyx, Plivo, Exotel, Vonage, raw PCM.

Each client speaks its provider's wire format as /work/shared/reference/protocols.md describes
it (field names, string or numeric counters, framing, codecs), like ``TwilioTestClient`` does
for Twilio, and plays the server's audio on a small real-time playout model:

* every audio message is decoded to PCM16 (``audio``) and "plays" for its duration after the
  audio queued before it;
* a playback acknowledgement request (Telnyx/Exotel ``mark``, Plivo ``checkpoint``, Vonage
  ``notify``, raw-PCM ``mark``) is echoed when the playout reaches it (at once when nothing is
  queued), as the provider does;
* a clear drops the queue and is answered as the provider answers it (Telnyx and raw PCM echo
  every pending mark, Plivo sends ``clearedAudio``, Vonage ``websocket:cleared``).

Every server message is also checked against the provider's rules for what it accepts from a
bot; whatever a real provider would reject is recorded in ``violations`` (tests assert it is
empty). Set ``respond = False`` to turn the automatic echoes off.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar, Self

from fastapi import FastAPI, Request, Response
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from phonewire.audio.analysis import dominant_frequency, rms_dbfs, tone
from phonewire.audio.g711 import alaw_to_pcm, pcm_to_alaw, pcm_to_ulaw, ulaw_to_pcm
from phonewire.frames import BotStoppedSpeakingFrame, InputDTMFFrame

Msg = dict[str, Any] | bytes


def swap16(pcm: bytes) -> bytes:
    """Swap the bytes of every 16-bit sample (little-endian <-> big-endian)."""
    out = bytearray(pcm)
    out[0::2], out[1::2] = pcm[1::2], pcm[0::2]
    return bytes(out)


def _b64(payload: Any) -> bytes | None:
    if not isinstance(payload, str):
        return None
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` every 10 ms; TimeoutError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


class Playout:
    """The provider's playback queue: audio plays in real time, marks come due when reached."""

    def __init__(self) -> None:
        self.end = 0.0
        self.marks: deque[tuple[float, str]] = deque()

    def add_audio(self, seconds: float, now: float) -> None:
        self.end = max(self.end, now) + seconds

    def add_mark(self, name: str, now: float) -> None:
        self.marks.append((max(self.end, now), name))

    def next_due(self) -> float | None:
        return self.marks[0][0] if self.marks else None

    def pop_due(self, now: float) -> list[str]:
        due = []
        while self.marks and self.marks[0][0] <= now:
            due.append(self.marks.popleft()[1])
        return due

    def clear(self) -> list[str]:
        """Drop the queued audio; returns the names of the marks still pending, in order."""
        names = [name for _, name in self.marks]
        self.marks.clear()
        self.end = 0.0
        return names


class ProviderTestClient(ABC):
    """Common machinery: connection, receiving, playout, acknowledgements, violations."""

    provider: ClassVar[str] = ""

    def __init__(self, ws: ClientConnection, *, rate: int, packet_ms: int = 20) -> None:
        self.ws = ws
        self.rate = rate
        self.packet_ms = packet_ms
        self.respond = True
        self.received: list[tuple[float, Msg]] = []
        #: Decoded server audio, (arrival time, PCM16 at ``rate``) per audio message.
        self.audio: list[tuple[float, bytes]] = []
        #: Raw audio payloads as they were on the wire (before decoding).
        self.payloads: list[bytes] = []
        self.marks_received: list[str] = []
        self.acks_sent: list[str] = []
        self.clears = 0
        self.violations: list[str] = []
        self.closed = False
        self.playout = Playout()

    @classmethod
    async def connect(cls, hostport: str, path: str = "/ws", **kwargs: Any) -> Self:
        ws = await connect(f"ws://{hostport}{path}", compression=None, open_timeout=5, close_timeout=2)
        return cls(ws, **kwargs)

    # --- provider specifics (overridden) ---------------------------------------------------

    @abstractmethod
    async def media(self, pcm: bytes) -> None:
        """Send one packet of caller audio in the provider's media message."""

    @abstractmethod
    async def ack(self, name: str) -> None:
        """Echo the server's playback acknowledgement request ``name``."""

    async def answer_clear(self, pending: list[str]) -> None:  # noqa: B027 - optional hook: most providers send nothing
        """What the provider does after dropping its queue on a clear."""

    @abstractmethod
    def audio_payload(self, msg: Msg) -> bytes | None:
        """The wire bytes of an audio message, None for other messages."""

    def decode(self, payload: bytes) -> bytes:
        """Wire audio -> PCM16 little-endian at ``rate``."""
        return payload

    @abstractmethod
    def mark_of(self, msg: Msg) -> str | None:
        """The name in a server playback-acknowledgement request, None for other messages."""

    @abstractmethod
    def is_clear(self, msg: Msg) -> bool:
        """Whether the server message asks to drop queued audio."""

    def check(self, msg: Msg) -> list[str]:
        """What the real provider would reject in ``msg``."""
        return []

    # --- sending ---------------------------------------------------------------------------

    async def send(self, obj: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(obj if isinstance(obj, str | bytes) else json.dumps(obj, separators=(",", ":")))

    @property
    def packet_bytes(self) -> int:
        """PCM16 bytes in one inbound packet."""
        return self.rate * self.packet_ms // 1000 * 2

    async def stream_audio(self, pcm: bytes, *, realtime: bool = True) -> None:
        """Send PCM16 at ``rate`` in ``packet_ms`` packets, on a real-time clock (anchored, no drift)."""
        t0 = time.monotonic()
        step = self.packet_bytes
        for i in range(0, len(pcm), step):
            if realtime:
                await asyncio.sleep(max(0.0, t0 + i / (2 * self.rate) - time.monotonic()))
            await self.media(pcm[i : i + step])

    # --- receiving -------------------------------------------------------------------------

    async def recv(self, timeout: float = 5.0) -> Msg:
        async with asyncio.timeout(timeout):
            raw = await self.ws.recv()
        now = time.monotonic()
        msg: Msg = raw if isinstance(raw, bytes) else json.loads(raw)
        self.received.append((now, msg))
        self.violations.extend(f"{self.provider}: {problem}" for problem in self.check(msg))
        payload = self.audio_payload(msg)
        if payload is not None:
            self.payloads.append(payload)
            pcm = self.decode(payload)
            self.audio.append((now, pcm))
            self.playout.add_audio(len(pcm) / 2 / self.rate, now)
        name = self.mark_of(msg)
        if name is not None:
            self.marks_received.append(name)
            self.playout.add_mark(name, now)
        if self.is_clear(msg):
            self.clears += 1
            pending = self.playout.clear()
            if self.respond:
                await self.answer_clear(pending)
        await self.echo_due_marks()
        return msg

    async def echo_due_marks(self) -> None:
        if not self.respond:
            return
        for name in self.playout.pop_due(time.monotonic()):
            self.acks_sent.append(name)
            await self.ack(name)

    async def pump(
        self, seconds: float, *, idle: float | None = None, until: Callable[[Msg], bool] | None = None
    ) -> list[Msg]:
        """Receive (and play out, and acknowledge) for up to ``seconds``.

        Stops early when ``until(msg)`` is true, when the socket closes, or - with ``idle`` -
        once something arrived and then nothing for ``idle`` seconds with no mark still due.
        Returns the messages received.
        """
        out: list[Msg] = []
        deadline = time.monotonic() + seconds
        last = time.monotonic()
        while not self.closed:
            now = time.monotonic()
            if now >= deadline:
                break
            wait = deadline - now
            due = self.playout.next_due() if self.respond else None
            if due is not None:
                wait = min(wait, max(0.0, due - now))
            if idle is not None and out and due is None:
                if now - last >= idle:
                    break
                wait = min(wait, last + idle - now)
            try:
                msg = await self.recv(max(0.001, wait))
            except TimeoutError:
                await self.echo_due_marks()
                continue
            except ConnectionClosed:
                self.closed = True
                break
            last = time.monotonic()
            out.append(msg)
            if until is not None and until(msg):
                break
        return out

    async def expect(self, predicate: Callable[[Msg], bool], timeout: float = 5.0) -> Msg:
        """Pump until a message matches ``predicate``; TimeoutError if none does in time."""
        msgs = await self.pump(timeout, until=predicate)
        if msgs and predicate(msgs[-1]):
            return msgs[-1]
        raise TimeoutError(f"no matching message within {timeout}s (closed={self.closed})")

    async def expect_audio(self, timeout: float = 5.0) -> Msg:
        return await self.expect(lambda m: self.audio_payload(m) is not None, timeout)

    async def expect_clear(self, timeout: float = 5.0) -> Msg:
        return await self.expect(self.is_clear, timeout)

    async def wait_closed(self, timeout: float = 5.0) -> int | None:
        """Pump (answering as the provider would) until the server closes; returns the close code."""
        await self.pump(timeout)
        if not self.closed:
            raise TimeoutError(f"the server did not close the socket within {timeout}s")
        return self.ws.close_code

    def pcm(self, since: float = 0.0) -> bytes:
        """All decoded server audio received at or after ``since`` (a monotonic time)."""
        return b"".join(p for t, p in self.audio if t >= since)

    async def close(self) -> None:
        self.closed = True
        await self.ws.close()


# ------------------------------------------------------------------------------------- Telnyx


class _TwilioStyleEvents(ProviderTestClient):
    """Telnyx and Exotel speak Twilio's outbound shapes: ``media.payload``, ``mark.name``, ``clear``."""

    def audio_payload(self, msg: Msg) -> bytes | None:
        if isinstance(msg, dict) and msg.get("event") == "media" and isinstance(msg.get("media"), dict):
            return _b64(msg["media"].get("payload"))
        return None

    def mark_of(self, msg: Msg) -> str | None:
        if isinstance(msg, dict) and msg.get("event") == "mark" and isinstance(msg.get("mark"), dict):
            name = msg["mark"].get("name")
            return name if isinstance(name, str) else None
        return None

    def is_clear(self, msg: Msg) -> bool:
        return isinstance(msg, dict) and msg.get("event") == "clear"


TELNYX_STREAM_ID = "6F1C2B7A-0D4E-4C51-9A3B-5E8D7C6B4A21"
TELNYX_CALL_CONTROL_ID = "v3:pw-e2e-Q2FsbENvbnRyb2xJZC0wMDAx"
TELNYX_USER_ID = "0b7d3f5e-2a41-4c8e-9d6f-1e2a3b4c5d6e"
TELNYX_FROM = "+13125550143"
TELNYX_TO = "+13125550187"
_TELNYX_BYTES_PER_SAMPLE = {"PCMU": 1, "PCMA": 1, "L16": 2}


class TelnyxTestClient(_TwilioStyleEvents):
    """Telnyx media streaming, bidirectional RTP mode: snake_case JSON, string counters,
    top-level ``stream_id``; L16 in network (big-endian) byte order, like the serializer."""

    provider = "telnyx"

    def __init__(self, ws: ClientConnection, *, encoding: str = "PCMU", rate: int = 8000) -> None:
        super().__init__(ws, rate=rate)
        self.encoding = encoding
        self.seq = 0
        self.chunk = 0
        self.dtmf_count = 0

    def _next_seq(self) -> str:
        self.seq += 1
        return str(self.seq)

    async def handshake(self, custom: dict[str, str] | None = None) -> None:
        await self.send({"event": "connected", "version": "1.0.0"})
        await self.send(
            {
                "event": "start",
                "sequence_number": self._next_seq(),
                "start": {
                    "user_id": TELNYX_USER_ID,
                    "call_control_id": TELNYX_CALL_CONTROL_ID,
                    "call_session_id": "5c1d8e2f-7a9b-4c3d-8e1f-2a3b4c5d6e7f",
                    "from": TELNYX_FROM,
                    "to": TELNYX_TO,
                    "tags": ["phonewire-e2e"],
                    "client_state": "cGhvbmV3aXJlLWUyZQ==",
                    "custom_parameters": custom if custom is not None else {"customer_id": "cust_1001"},
                    "media_format": {"encoding": self.encoding, "sample_rate": self.rate, "channels": 1},
                },
                "stream_id": TELNYX_STREAM_ID,
            }
        )

    def encode(self, pcm: bytes) -> bytes:
        if self.encoding == "PCMU":
            return pcm_to_ulaw(pcm)
        if self.encoding == "PCMA":
            return pcm_to_alaw(pcm)
        return swap16(pcm)

    def decode(self, payload: bytes) -> bytes:
        if self.encoding == "PCMU":
            return ulaw_to_pcm(payload)
        if self.encoding == "PCMA":
            return alaw_to_pcm(payload)
        return swap16(payload)

    def media_message(self, pcm: bytes) -> dict[str, Any]:
        """The next inbound media message (numbers the packet; does not send it)."""
        self.chunk += 1
        return {
            "event": "media",
            "sequence_number": self._next_seq(),
            "media": {
                "track": "inbound",
                "chunk": str(self.chunk),
                "timestamp": str(self.packet_ms * (self.chunk - 1)),
                "payload": base64.b64encode(self.encode(pcm)).decode(),
            },
            "stream_id": TELNYX_STREAM_ID,
        }

    async def media(self, pcm: bytes) -> None:
        await self.send(self.media_message(pcm))

    async def dtmf(self, digit: str, occurred_at: str | None = None) -> None:
        self.dtmf_count += 1
        stamp = occurred_at or f"2026-03-02T10:15:{self.dtmf_count:02d}.{self.dtmf_count * 1000:06d}Z"
        await self.send(
            {
                "event": "dtmf",
                "stream_id": TELNYX_STREAM_ID,
                "occurred_at": stamp,
                "sequence_number": self._next_seq(),
                "dtmf": {"digit": digit},
            }
        )

    async def ack(self, name: str) -> None:
        seq = self._next_seq()
        await self.send(
            {"event": "mark", "stream_id": TELNYX_STREAM_ID, "sequence_number": seq, "mark": {"name": name}}
        )

    async def answer_clear(self, pending: list[str]) -> None:
        # "clear stops playback, empties the queue and returns all queued marks"
        for name in pending:
            self.acks_sent.append(name)
            await self.ack(name)

    async def stop(self) -> None:
        await self.send(
            {
                "event": "stop",
                "sequence_number": self._next_seq(),
                "stop": {"user_id": TELNYX_USER_ID, "call_control_id": TELNYX_CALL_CONTROL_ID},
                "stream_id": TELNYX_STREAM_ID,
            }
        )

    def check(self, msg: Msg) -> list[str]:
        if isinstance(msg, bytes):
            return ["binary frame (Telnyx takes JSON text only)"]
        event = msg.get("event")
        if event == "media":
            media = msg.get("media")
            payload = _b64(media.get("payload")) if isinstance(media, dict) else None
            if payload is None:
                return ["media without a base64 payload"]
            per_sample = _TELNYX_BYTES_PER_SAMPLE[self.encoding]
            ms = len(payload) / per_sample / self.rate * 1000
            if len(payload) % per_sample:
                return [f"media payload of {len(payload)} bytes is not whole {self.encoding} samples"]
            if not 20 <= ms <= 30_000:
                return [f"media payload of {ms:.1f} ms (Telnyx takes 20 ms to 30 s)"]
            return []
        if event == "mark":
            return [] if self.mark_of(msg) is not None else ["mark without mark.name"]
        if event == "clear":
            return []
        return [f"unknown event {event!r}"]


# -------------------------------------------------------------------------------------- Plivo

PLIVO_STREAM_ID = "3d9a7c1e-5b2f-4e8a-9c6d-7f1e2a3b4c5d"
PLIVO_CALL_ID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
PLIVO_ACCOUNT_ID = "MAPWE2E0000000000001"
PLIVO_EXTRA_HEADERS = "userId=42;sessionId=pw-e2e"
_PLIVO_BASE_MS = 1772446500000


class PlivoTestClient(ProviderTestClient):
    """Plivo Audio Streams: camelCase JSON, **numeric** ``sequenceNumber``/``chunk`` and a string
    ``timestamp``; no ``connected`` and no ``stop`` (the socket just closes)."""

    provider = "plivo"

    def __init__(self, ws: ClientConnection, *, encoding: str = "audio/x-mulaw", rate: int = 8000) -> None:
        super().__init__(ws, rate=rate)
        self.encoding = encoding
        self.seq = 0
        self.chunk = 0

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _stamp(self) -> str:
        return str(_PLIVO_BASE_MS + self.packet_ms * self.chunk)

    async def handshake(self, *, numeric: bool = True) -> None:
        """``numeric=False`` spells sequenceNumber and sampleRate as strings."""
        seq = self._next_seq()
        await self.send(
            {
                "event": "start",
                "sequenceNumber": seq if numeric else str(seq),
                "start": {
                    "callId": PLIVO_CALL_ID,
                    "streamId": PLIVO_STREAM_ID,
                    "accountId": PLIVO_ACCOUNT_ID,
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": self.encoding, "sampleRate": self.rate if numeric else str(self.rate)},
                },
                "extra_headers": PLIVO_EXTRA_HEADERS,
            }
        )

    @property
    def mulaw(self) -> bool:
        return self.encoding == "audio/x-mulaw"

    def decode(self, payload: bytes) -> bytes:
        return ulaw_to_pcm(payload) if self.mulaw else payload

    def media_message(self, pcm: bytes, *, numeric: bool = True) -> dict[str, Any]:
        """The next media message; ``numeric=False`` spells the counters as strings."""
        self.chunk += 1
        seq = self._next_seq()
        return {
            "event": "media",
            "sequenceNumber": seq if numeric else str(seq),
            "streamId": PLIVO_STREAM_ID,
            "media": {
                "track": "inbound",
                "timestamp": self._stamp(),
                "chunk": self.chunk if numeric else str(self.chunk),
                "payload": base64.b64encode(pcm_to_ulaw(pcm) if self.mulaw else pcm).decode(),
            },
            "extra_headers": PLIVO_EXTRA_HEADERS,
        }

    async def media(self, pcm: bytes) -> None:
        await self.send(self.media_message(pcm))

    async def dtmf(self, digit: str) -> None:
        await self.send(
            {
                "event": "dtmf",
                "sequenceNumber": self._next_seq(),
                "streamId": PLIVO_STREAM_ID,
                "dtmf": {"track": "inbound", "digit": digit, "timestamp": self._stamp()},
                "extra_headers": PLIVO_EXTRA_HEADERS,
            }
        )

    async def ack(self, name: str) -> None:
        await self.send(
            {"event": "playedStream", "sequenceNumber": self._next_seq(), "streamId": PLIVO_STREAM_ID, "name": name}
        )

    async def answer_clear(self, pending: list[str]) -> None:
        await self.send({"event": "clearedAudio", "sequenceNumber": self._next_seq(), "streamId": PLIVO_STREAM_ID})

    def audio_payload(self, msg: Msg) -> bytes | None:
        if isinstance(msg, dict) and msg.get("event") == "playAudio" and isinstance(msg.get("media"), dict):
            return _b64(msg["media"].get("payload"))
        return None

    def mark_of(self, msg: Msg) -> str | None:
        if isinstance(msg, dict) and msg.get("event") == "checkpoint" and isinstance(msg.get("name"), str):
            return str(msg["name"])
        return None

    def is_clear(self, msg: Msg) -> bool:
        return isinstance(msg, dict) and msg.get("event") == "clearAudio"

    def check(self, msg: Msg) -> list[str]:
        if isinstance(msg, bytes):
            return ["binary frame (Plivo takes JSON text only)"]
        event = msg.get("event")
        problems = []
        if len(json.dumps(msg, separators=(",", ":")).encode()) > 64 * 1024:
            problems.append("message larger than 64 KB")
        if event == "playAudio":
            media = msg.get("media")
            if not isinstance(media, dict):
                return [*problems, "playAudio without media"]
            if media.get("contentType") != self.encoding:
                problems.append(f"playAudio contentType {media.get('contentType')!r} != stream's {self.encoding!r}")
            rate = media.get("sampleRate")
            if type(rate) is not int or rate != self.rate:
                problems.append(f"playAudio sampleRate {rate!r} is not the integer {self.rate}")
            payload = media.get("payload")
            if _b64(payload) is None:
                problems.append("playAudio payload is not base64")
            elif len(payload) > 16 * 1024:
                problems.append("playAudio payload above the recommended 16 KB of base64")
        elif event in ("checkpoint", "clearAudio"):
            if msg.get("streamId") != PLIVO_STREAM_ID:
                problems.append(f"{event} without our streamId")
            if event == "checkpoint" and not isinstance(msg.get("name"), str):
                problems.append("checkpoint without a name")
        elif event == "sendDTMF":
            if not isinstance(msg.get("dtmf"), str):
                problems.append("sendDTMF without digits")
        else:
            problems.append(f"unknown event {event!r}")
        return problems


# ------------------------------------------------------------------------------------- Exotel

EXOTEL_STREAM_SID = "MZ5f0c2a9e4b7d18c3a6e21f04"
EXOTEL_CALL_SID = "CA93b1e7d4c0a25f86e3d7b915"
EXOTEL_ACCOUNT_SID = "AC2d8e4f61a09b37c5e8f1d2a4"
EXOTEL_FROM = "+919812345678"
EXOTEL_TO = "+918030123456"


class ExotelTestClient(_TwilioStyleEvents):
    """Exotel Voicebot applet: snake_case JSON where every number is a string; 16-bit
    little-endian PCM at 8, 16 or 24 kHz in ~100 ms media messages."""

    provider = "exotel"

    def __init__(self, ws: ClientConnection, *, rate: int = 8000) -> None:
        super().__init__(ws, rate=rate, packet_ms=100)
        self.seq = 0
        self.chunk = 0

    def _next_seq(self) -> str:
        self.seq += 1
        return str(self.seq)

    async def handshake(self, custom: dict[str, str] | None = None) -> None:
        await self.send({"event": "connected"})
        await self.send(
            {
                "event": "start",
                "sequence_number": self._next_seq(),
                "stream_sid": EXOTEL_STREAM_SID,
                "start": {
                    "stream_sid": EXOTEL_STREAM_SID,
                    "call_sid": EXOTEL_CALL_SID,
                    "account_sid": EXOTEL_ACCOUNT_SID,
                    "from": EXOTEL_FROM,
                    "to": EXOTEL_TO,
                    "custom_parameters": custom if custom is not None else {"lang": "hi-IN"},
                    "media_format": {"encoding": "audio/x-raw", "sample_rate": str(self.rate), "bit_rate": "16"},
                },
            }
        )

    async def media(self, pcm: bytes) -> None:
        self.chunk += 1
        await self.send(
            {
                "event": "media",
                "sequence_number": self._next_seq(),
                "stream_sid": EXOTEL_STREAM_SID,
                "media": {
                    "chunk": str(self.chunk),
                    "timestamp": str(self.packet_ms * self.chunk),
                    "payload": base64.b64encode(pcm).decode(),
                },
            }
        )

    async def dtmf(self, digit: str, duration_ms: int = 120) -> None:
        await self.send(
            {
                "event": "dtmf",
                "sequence_number": self._next_seq(),
                "stream_sid": EXOTEL_STREAM_SID,
                "dtmf": {"digit": digit, "duration": str(duration_ms)},
            }
        )

    async def ack(self, name: str) -> None:
        await self.send(
            {
                "event": "mark",
                "sequence_number": self._next_seq(),
                "stream_sid": EXOTEL_STREAM_SID,
                "mark": {"name": name},
            }
        )

    async def stop(self, reason: str = "callended") -> None:
        await self.send(
            {
                "event": "stop",
                "sequence_number": self._next_seq(),
                "stream_sid": EXOTEL_STREAM_SID,
                "stop": {"call_sid": EXOTEL_CALL_SID, "account_sid": EXOTEL_ACCOUNT_SID, "reason": reason},
            }
        )

    def check(self, msg: Msg) -> list[str]:
        if isinstance(msg, bytes):
            return ["binary frame (Exotel takes JSON text only)"]
        event = msg.get("event")
        if event not in ("media", "mark", "clear"):
            return [f"unknown event {event!r}"]
        if msg.get("stream_sid") != EXOTEL_STREAM_SID:
            return [f"{event} without our stream_sid"]
        if event == "media":
            payload = self.audio_payload(msg)
            if payload is None:
                return ["media without a base64 payload"]
            if len(payload) % 320 or len(payload) > 100_000:
                return [f"media chunk of {len(payload)} bytes (must be a multiple of 320 B, at most 100 KB)"]
        if event == "mark" and self.mark_of(msg) is None:
            return ["mark without mark.name"]
        return []


# ------------------------------------------------------------------------------------- Vonage

VONAGE_CALL_UUID = "63f61863-4a51-4f6b-86e1-46edebcf9356"


class VonageTestClient(ProviderTestClient):
    """Vonage Voice API WebSocket: ``websocket:connected`` first, then binary 20 ms L16 frames
    both ways; ``notify``/``clear`` actions answered by ``websocket:notify``/``websocket:cleared``."""

    provider = "vonage"

    def __init__(self, ws: ClientConnection, *, rate: int = 16000) -> None:
        super().__init__(ws, rate=rate)
        self._notify_payloads: dict[str, dict[str, Any]] = {}

    async def handshake(self, headers: dict[str, Any] | None = None) -> None:
        fields = headers if headers is not None else {"call_uuid": VONAGE_CALL_UUID, "language": "en-GB"}
        await self.send(
            {
                "event": "websocket:connected",
                "content-type": f"audio/l16;rate={self.rate}",
                **fields,
            }
        )

    async def media(self, pcm: bytes) -> None:
        await self.send(pcm)

    async def dtmf(self, digit: str, duration_ms: int = 260) -> None:
        await self.send({"event": "websocket:dtmf", "digit": digit, "duration": duration_ms})

    async def ack(self, name: str) -> None:
        payload = self._notify_payloads.pop(name, {"mark": name})
        await self.send({"event": "websocket:notify", "payload": payload})

    async def answer_clear(self, pending: list[str]) -> None:
        await self.send({"event": "websocket:cleared"})

    def audio_payload(self, msg: Msg) -> bytes | None:
        return msg if isinstance(msg, bytes) else None

    def mark_of(self, msg: Msg) -> str | None:
        if isinstance(msg, dict) and msg.get("action") == "notify" and isinstance(msg.get("payload"), dict):
            name = msg["payload"].get("mark")
            if isinstance(name, str):
                self._notify_payloads[name] = msg["payload"]
                return name
        return None

    def is_clear(self, msg: Msg) -> bool:
        return isinstance(msg, dict) and msg.get("action") == "clear"

    def check(self, msg: Msg) -> list[str]:
        frame = self.rate // 50 * 2
        if isinstance(msg, bytes):
            return [] if len(msg) == frame else [f"binary frame of {len(msg)} bytes (must be exactly {frame})"]
        action = msg.get("action")
        if action == "clear":
            return []
        if action == "notify":
            return [] if isinstance(msg.get("payload"), dict) else ["notify without an object payload"]
        return [f"unknown text message {json.dumps(msg)[:60]}"]


# ------------------------------------------------------------------------------------ raw PCM


class RawPCMTestClient(ProviderTestClient):
    """The raw-PCM protocol (docs/raw-pcm.md): binary PCM16 LE both ways, optional JSON control."""

    provider = "raw_pcm"

    def __init__(self, ws: ClientConnection, *, rate: int = 16000) -> None:
        super().__init__(ws, rate=rate)

    async def handshake(self, call_id: str = "e2e-raw-1") -> None:
        await self.send(
            {
                "event": "start",
                "call_id": call_id,
                "sample_rate": self.rate,
                "custom_parameters": {"k": "v", "n": 3},
                "from": "+15555550100",
                "to": "+15555550199",
            }
        )

    async def media(self, pcm: bytes) -> None:
        await self.send(pcm)

    async def dtmf(self, digit: str, duration_ms: int = 120) -> None:
        await self.send({"event": "dtmf", "digit": digit, "duration_ms": duration_ms})

    async def ack(self, name: str) -> None:
        await self.send({"event": "mark", "name": name})

    async def answer_clear(self, pending: list[str]) -> None:
        for name in pending:  # "echo every mark still pending, in order"
            self.acks_sent.append(name)
            await self.ack(name)
        await self.send({"event": "cleared"})

    async def stop(self, reason: str = "hangup") -> None:
        await self.send({"event": "stop", "reason": reason})

    def audio_payload(self, msg: Msg) -> bytes | None:
        return msg if isinstance(msg, bytes) else None

    def mark_of(self, msg: Msg) -> str | None:
        if isinstance(msg, dict) and msg.get("event") == "mark" and isinstance(msg.get("name"), str):
            return str(msg["name"])
        return None

    def is_clear(self, msg: Msg) -> bool:
        return isinstance(msg, dict) and msg.get("event") == "clear"

    def check(self, msg: Msg) -> list[str]:
        if isinstance(msg, bytes):
            return [] if len(msg) % 2 == 0 else [f"odd-length audio frame ({len(msg)} bytes)"]
        event = msg.get("event")
        if event == "mark":
            return [] if self.mark_of(msg) is not None else ["mark without a name"]
        if event in ("clear", "message"):
            return []
        if event == "dtmf":
            return [] if isinstance(msg.get("digits"), str) else ["dtmf without digits"]
        return [f"unknown event {event!r}"]


# ------------------------------------------------------------------------------ fake REST API


def fake_rest_api(status: int = 200, body: bytes = b"{}") -> tuple[FastAPI, list[dict[str, Any]]]:
    """A provider REST API stand-in that records every request (arrival time, method, path, auth, body)."""
    app = FastAPI()
    seen: list[dict[str, Any]] = []

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    async def anything(path: str, request: Request) -> Response:
        seen.append(
            {
                "at": time.monotonic(),
                "method": request.method,
                "path": request.url.path,
                "authorization": request.headers.get("authorization"),
                "content_type": request.headers.get("content-type"),
                "body": await request.body(),
            }
        )
        return Response(b"" if status == 204 else body, status_code=status, media_type="application/json")

    return app, seen


# ------------------------------------------------------------------------ assertions, hooks


def bot_stopped(call: Any) -> list[BotStoppedSpeakingFrame]:
    """The BotStoppedSpeakingFrames the output pushed downstream."""
    return [f for f, _ in call.tail if isinstance(f, BotStoppedSpeakingFrame)]


def dtmf_frames(call: Any) -> list[InputDTMFFrame]:
    """The DTMF frames the input pushed into the pipeline."""
    return [f for f, _ in call.frames if isinstance(f, InputDTMFFrame)]


def cancel_on_disconnect(call: Any) -> None:
    """An ``on_transport`` hook: registers an ``on_client_disconnected`` handler that ends the call."""

    @call.transport.event_handler("on_client_disconnected")
    async def _(transport: Any, websocket: Any) -> None:
        await call.task.cancel()


def assert_tone(pcm: bytes, rate: int, freq: float, seconds: float) -> None:
    """``pcm`` is (nearly) all of a ``seconds`` long sine at ``freq`` and amplitude 0.3."""
    assert len(pcm) >= 2 * rate * seconds * 0.9, f"only {len(pcm) / 2 / rate:.3f}s of audio came back"
    assert abs(dominant_frequency(pcm, rate) - freq) < max(5.0, freq * 0.005), dominant_frequency(pcm, rate)
    middle = pcm[len(pcm) // 4 // 2 * 2 : len(pcm) * 3 // 4 // 2 * 2]
    assert abs(rms_dbfs(middle) - rms_dbfs(tone(freq, seconds, rate))) < 1.0, rms_dbfs(middle)
