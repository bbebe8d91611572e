"""OpenAISTTService through the official SDK against FakeOpenAIServer on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

from phonewire.audio.wav import read_wav
from phonewire.frames import (
    ErrorFrame,
    InputAudioRawFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from phonewire.services.openai import OpenAISTTService
from phonewire.services.stt_service import DEFAULT_STT_FAILURE_TEXT
from phonewire.testing.fakes import FakeOpenAIServer, StatusFault, validate_transcription_form

from ..speech_harness import running

KEY = "sk-test-secret-5678"
RATE = 8000


def packets(n: int) -> list[InputAudioRawFrame]:
    return [InputAudioRawFrame(audio=bytes(range(64)) * 5, sample_rate=RATE) for _ in range(n)]  # 20 ms each


def turn(n: int) -> list:
    return [
        VADUserStartedSpeakingFrame(start_secs=0.2), UserStartedSpeakingFrame(), *packets(n),
        VADUserStoppedSpeakingFrame(stop_secs=0.8), UserStoppedSpeakingFrame(),
    ]  # fmt: skip


def stt_for(fake: FakeOpenAIServer, **kwargs: object) -> OpenAISTTService:
    return OpenAISTTService(api_key=KEY, base_url=fake.base_url, retry_backoff_secs=0, **kwargs)  # type: ignore[arg-type]


def test_segment_is_sent_as_a_wav_of_the_audio_pushed_and_transcribed() -> None:
    async def main() -> None:
        async with FakeOpenAIServer(transcripts=["I need to reschedule."]) as fake:
            stt = stt_for(fake, model="whisper-1", language="en", prompt="Appointments.")
            async with running(stt) as h:
                await h.push(*packets(5), *turn(40))  # 0.1 s before speech: all of it is pre-roll
                [frame] = await h.downstream.wait_for_type(TranscriptionFrame)
                assert isinstance(frame, TranscriptionFrame)
                assert (frame.text, frame.finalized, frame.language) == ("I need to reschedule.", True, "en")
                [request] = fake.transcription_requests
                validate_transcription_form(request.form)
                assert request.form["model"] == "whisper-1" and request.form["response_format"] == "json"
                assert request.form["language"] == "en" and request.audio_filename == "segment.wav"
                assert request.audio is not None and request.api_key_last4 == KEY[-4:]
                pcm, rate, channels = read_wav(request.audio)
                assert (rate, channels) == (RATE, 1)
                assert pcm == b"".join(p.audio for p in packets(45))  # 0.9 s: pre-roll + speech

    asyncio.run(main())


def test_inline_audio_path_never_awaits_the_network() -> None:
    async def main() -> None:
        async with FakeOpenAIServer(transcription_latency_s=1.0) as fake:
            stt = stt_for(fake)
            async with running(stt) as h:
                t0 = time.monotonic()
                await h.push(*turn(50), *packets(50))
                assert time.monotonic() - t0 < 0.3  # the request takes 1 s; the pushes did not wait for it
                await h.downstream.wait_for_type(TranscriptionFrame, timeout=5)
                first = next(i for i, f in enumerate(h.downstream.frames) if isinstance(f, TranscriptionFrame))
                assert sum(isinstance(f, InputAudioRawFrame) for f in h.downstream.frames[:first]) == 100

    asyncio.run(main())


def test_failure_pushes_error_and_didnt_catch_that_then_the_next_turn_works() -> None:
    async def main() -> None:
        async with FakeOpenAIServer(transcripts=["second try works"]) as fake:
            fake.fail_next(StatusFault(503), endpoint="transcriptions", times=2)
            stt = stt_for(fake)
            async with running(stt) as h:
                await h.push(*turn(10))
                [speak] = await h.downstream.wait_for_type(TTSSpeakFrame)
                assert isinstance(speak, TTSSpeakFrame)
                assert speak.text == DEFAULT_STT_FAILURE_TEXT and speak.append_to_context is False
                assert len(await h.upstream.wait_for_type(ErrorFrame)) == 1 and stt.error_count == 1
                assert [r.status for r in fake.transcription_requests] == [503, 503]
                await h.push(*turn(10))
                [frame] = await h.downstream.wait_for_type(TranscriptionFrame)
                assert frame.text == "second try works"  # type: ignore[attr-defined]

    asyncio.run(main())
