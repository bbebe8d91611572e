"""Call helpers for the end-to-end tests: a fake provider REST API, hooks and assertions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response

from phonewire.audio.analysis import dominant_frequency, rms_dbfs, tone
from phonewire.frames import BotStoppedSpeakingFrame, InputDTMFFrame


def swap16(pcm: bytes) -> bytes:
    """Swap the bytes of every 16-bit sample (little-endian <-> big-endian)."""
    out = bytearray(pcm)
    out[0::2], out[1::2] = pcm[1::2], pcm[0::2]
    return bytes(out)


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` every 10 ms; TimeoutError naming ``what`` after ``timeout`` seconds.

    A bounded poll, for state with no event to await (a server-side counter, a REST request
    seen by the fake API)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


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
