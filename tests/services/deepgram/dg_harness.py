"""Helpers for the Deepgram service tests: the caller's recordings as wire-mode μ-law packets."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

from phonewire.audio.g711 import pcm_to_ulaw
from phonewire.audio.wav import read_wav
from phonewire.frames import (
    Frame,
    InputAudioRawFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from phonewire.testing.script import builtin_recording

PACKET = 160  # 20 ms of 8 kHz μ-law


def recording_ulaw(name: str) -> bytes:
    pcm, rate, _ = read_wav(builtin_recording(name))
    assert rate == 8000
    return pcm_to_ulaw(pcm)


def recording_pcm(name: str) -> bytes:
    return read_wav(builtin_recording(name))[0]


def wire_packets(ulaw: bytes) -> list[InputAudioRawFrame]:
    return [
        InputAudioRawFrame(audio=b"", sample_rate=8000, wire_audio=ulaw[i : i + PACKET], wire_encoding="mulaw")
        for i in range(0, len(ulaw), PACKET)
    ]


def silence(ms: int) -> list[InputAudioRawFrame]:
    return wire_packets(b"\xff" * (8 * ms))


def turn(ulaw: bytes) -> list[Frame]:
    """The caller says ``ulaw``; the VAD's start/stop frames around it, as the transport sends them."""
    return [
        VADUserStartedSpeakingFrame(start_secs=0.2),
        UserStartedSpeakingFrame(),
        *wire_packets(ulaw),
        VADUserStoppedSpeakingFrame(stop_secs=0.8),
        UserStoppedSpeakingFrame(),
    ]


def sync(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh loop (the repository's tests use asyncio.run, no plugin)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper
