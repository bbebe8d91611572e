"""OpenAISTTService: ``/audio/transcriptions`` per caller segment, for any Whisper-compatible server.

The segment goes up as a PCM16 WAV at the pipeline's input rate (8 kHz on a phone call is what
the caller said; upsampling adds nothing), ``response_format="json"`` (the one format every
model and compatible server serves). Buffering, ordering, the retry and the "didn't catch
that" are ``SegmentedSTTService``'s.
"""

from __future__ import annotations

import logging
from typing import Any

from phonewire.audio.wav import pcm_to_wav
from phonewire.frames import StartFrame
from phonewire.services.openai.audio_client import AudioClient, is_retryable_error
from phonewire.services.openai.audio_requests import transcription_params
from phonewire.services.stt_service import SegmentedSTTService

__all__ = ["OpenAISTTService"]

logger = logging.getLogger("phonewire.services.openai")


class OpenAISTTService(SegmentedSTTService):
    """``model``: ``gpt-4o-transcribe`` (default), ``gpt-4o-mini-transcribe``, ``whisper-1``
    or a compatible server's name. ``language`` (ISO-639-1) None lets the model detect it.
    Other keyword arguments go to ``SegmentedSTTService`` (pre-roll, timeouts, failure_text...)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str = "gpt-4o-transcribe",
        language: str | None = None,
        prompt: str | None = None,
        temperature: float | None = None,
        client: Any = None,
        timeout_secs: float = 30.0,
        connect_timeout_secs: float = 3.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(language=language, **kwargs)
        self.model_name = model
        self.prompt = prompt
        self.temperature = temperature
        self.metrics.model = model
        self._api = AudioClient(
            "OpenAISTTService",
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

    async def run_stt(self, audio: bytes, sample_rate: int) -> str | None:
        params = transcription_params(
            model=self.model_name, language=self.language, prompt=self.prompt, temperature=self.temperature
        )
        wav = pcm_to_wav(audio, sample_rate)
        logger.debug("> %s: transcribe %.2f s", self.name, len(audio) / 2 / sample_rate)
        result = await self._api.client.audio.transcriptions.create(file=("segment.wav", wav, "audio/wav"), **params)
        text = getattr(result, "text", result)
        return text if isinstance(text, str) else None
