"""OpenAITTSService: ``/audio/speech`` streamed as raw 24 kHz PCM, one request per sentence.

The base ``TTSService`` does the sentence splitting, pipelining, timeouts, the retry and the
apology; this file only turns one piece of text into a stream of bytes. Streaming goes through
the SDK's ``with_streaming_response`` so the first audio is pushed as soon as it arrives, and
leaving the ``async with`` (the end, a timeout, a barge-in's cancel) closes the HTTP stream.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from phonewire.exceptions import ConfigurationError
from phonewire.frames import StartFrame
from phonewire.services.openai.audio_client import AudioClient, is_retryable_error
from phonewire.services.openai.audio_requests import SPEECH_SAMPLE_RATE, speech_params, split_speech_input
from phonewire.services.tts_service import TTSService

__all__ = ["OpenAITTSService", "OpenAITTSSettings"]

logger = logging.getLogger("phonewire.services.openai")


@dataclass(slots=True, kw_only=True)
class OpenAITTSSettings:
    """Pipecat 1.x ``Settings``; a field left None takes the constructor's value."""

    model: str | None = None
    voice: str | None = None
    instructions: str | None = None
    speed: float | None = None


class OpenAITTSService(TTSService):
    """OpenAI's (or a compatible server's) speech endpoint. Always 24 kHz: the output
    transport resamples once to the call's rate. Other keyword arguments go to ``TTSService``
    (timeouts, retry, ``lookahead``, ``apology``...)."""

    Settings = OpenAITTSSettings

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str = "gpt-4o-mini-tts",
        voice: str = "alloy",
        instructions: str | None = None,
        speed: float | None = None,
        sample_rate: int | None = None,
        settings: OpenAITTSSettings | None = None,
        client: Any = None,
        timeout_secs: float = 30.0,
        connect_timeout_secs: float = 3.0,
        **kwargs: Any,
    ) -> None:
        if sample_rate not in (None, SPEECH_SAMPLE_RATE):
            raise ConfigurationError(f"OpenAITTSService produces {SPEECH_SAMPLE_RATE} Hz pcm, not {sample_rate}")
        super().__init__(sample_rate=SPEECH_SAMPLE_RATE, **kwargs)
        s = settings or OpenAITTSSettings()
        self.model_name = s.model or model
        self.voice = s.voice or voice
        self.instructions = s.instructions if s.instructions is not None else instructions
        self.speed = s.speed if s.speed is not None else speed
        speech_params("x", model=self.model_name, voice=self.voice, speed=self.speed)  # checks speed now
        self.metrics.model = self.model_name
        self._api = AudioClient(
            "OpenAITTSService",
            api_key=api_key,
            base_url=base_url,
            client=client,
            timeout_secs=timeout_secs,
            connect_timeout_secs=connect_timeout_secs,
        )

    async def start(self, frame: StartFrame) -> None:
        self._api.open()

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._api.close()

    def is_retryable(self, error: BaseException) -> bool:
        return is_retryable_error(error)

    async def run_tts(self, text: str) -> AsyncIterator[bytes]:
        speech = self._api.client.audio.speech
        for piece in split_speech_input(text):
            params = speech_params(
                piece, model=self.model_name, voice=self.voice, instructions=self.instructions, speed=self.speed
            )
            logger.debug("> %s: speech %d chars", self.name, len(piece))
            async with speech.with_streaming_response.create(**params) as response:
                async for chunk in response.iter_bytes():
                    yield chunk
