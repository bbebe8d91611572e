"""Requests for OpenAI's ``/audio/speech`` and ``/audio/transcriptions`` (sans-I/O).

Kept apart from the service processors so what we send can be checked against the SDK's own
request types (``SpeechCreateParams``, ``TranscriptionCreateParams``) without a socket, and so
the rules that decide retries live in one testable place. Facts: services.md §2.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MAX_SPEECH_INPUT_CHARS",
    "SPEECH_SAMPLE_RATE",
    "is_retryable_status",
    "speech_params",
    "split_speech_input",
    "transcription_params",
]

#: ``/audio/speech`` rejects longer ``input``.
MAX_SPEECH_INPUT_CHARS = 4096
#: ``response_format="pcm"`` is raw s16le mono at this rate, whatever the model.
SPEECH_SAMPLE_RATE = 24000


def speech_params(
    text: str, *, model: str, voice: str, instructions: str | None = None, speed: float | None = None
) -> dict[str, Any]:
    """The JSON body of one ``/audio/speech`` request, streamed raw PCM. ``instructions``
    is left out for ``tts-1``/``tts-1-hd``, which reject it."""
    params: dict[str, Any] = {"model": model, "voice": voice, "input": text, "response_format": "pcm"}
    if instructions and not model.startswith("tts-1"):
        params["instructions"] = instructions
    if speed is not None:
        if not 0.25 <= speed <= 4.0:
            raise ValueError(f"speed must be between 0.25 and 4.0, got {speed}")
        params["speed"] = speed
    return params


def split_speech_input(text: str, limit: int = MAX_SPEECH_INPUT_CHARS) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at the last space where there is
    one, so a long TTSSpeakFrame is spoken whole instead of refused."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = rest.rfind(" ", 0, limit + 1)
        cut = cut if cut > 0 else limit
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def transcription_params(
    *, model: str, language: str | None = None, prompt: str | None = None, temperature: float | None = None
) -> dict[str, Any]:
    """The form fields of one ``/audio/transcriptions`` request besides ``file``.
    ``response_format="json"`` is the one every model and Whisper-compatible server serves."""
    params: dict[str, Any] = {"model": model, "response_format": "json"}
    if language:
        params["language"] = language
    if prompt:
        params["prompt"] = prompt
    if temperature is not None:
        params["temperature"] = temperature
    return params


def is_retryable_status(status: int, code: str | None = None) -> bool:
    """Retry what the SDK would (408, 409, 429, 5xx), except an exhausted quota."""
    if status == 429:
        return code != "insufficient_quota"
    return status in (408, 409) or status >= 500
