"""OpenAITTSService through the official SDK against FakeOpenAIServer on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest

from phonewire.frames import (
    ErrorFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
)
from phonewire.services.openai import OpenAITTSService
from phonewire.services.openai.audio_requests import split_speech_input
from phonewire.testing.fakes import (
    FakeOpenAIServer,
    Hang,
    SpeechLatency,
    StatusFault,
    speech_duration_ms,
    validate_speech_request,
)

from ..speech_harness import running

KEY = "sk-test-secret-1234"


def tts_for(fake: FakeOpenAIServer, **kwargs: object) -> OpenAITTSService:
    return OpenAITTSService(api_key=KEY, base_url=fake.base_url, retry_backoff_secs=0, **kwargs)  # type: ignore[arg-type]


def audio_bytes(frames: list) -> int:
    return sum(len(f.audio) for f in frames if isinstance(f, TTSAudioRawFrame))


def test_streamed_reply_is_spoken_clause_by_clause_with_matching_audio_and_pts() -> None:
    async def main() -> None:
        async with FakeOpenAIServer(speech_latency=SpeechLatency(chunk_bytes=4801)) as fake:  # odd chunks
            tts = tts_for(fake, voice="coral", instructions="Warm.")
            async with running(tts) as h:
                await h.push(LLMFullResponseStartFrame())
                for token in ["Hello", " there", ",", " how", " are", " you", " today", "?", " I", " am", " fine", "."]:
                    await h.push(LLMTextFrame(text=token))
                [first] = await fake.wait_for_requests_async(1, endpoint="speech")
                await h.push(LLMFullResponseEndFrame())  # the first request went out before this
                await h.downstream.wait_for_type(LLMFullResponseEndFrame)
                requests = fake.speech_requests
                sent = [r.json["input"] for r in requests]
                assert sent == ["Hello there, how are you today?", "I am fine."] and first.json["input"] == sent[0]
                for r in requests:
                    validate_speech_request(r.json)
                    assert r.json["response_format"] == "pcm" and r.json["voice"] == "coral"
                    assert r.api_key_last4 == KEY[-4:]
                frames = h.downstream.frames
                assert all(len(f.audio) % 2 == 0 for f in frames if isinstance(f, TTSAudioRawFrame))
                expected_ms = sum(speech_duration_ms(t) for t in sent)
                assert audio_bytes(frames) == round(expected_ms * 48)
                texts = h.downstream.of(TTSTextFrame)
                assert [t.text for t in texts] == sent  # type: ignore[attr-defined]
                second = frames.index(texts[1])
                assert texts[1].pts_ms == pytest.approx(audio_bytes(frames[:second]) / 48)  # type: ignore[attr-defined]
                assert texts[0].pts_ms == 0  # type: ignore[attr-defined]
            assert KEY not in repr(tts) and KEY not in repr(vars(tts))

    asyncio.run(main())


def test_interruption_mid_synthesis_closes_the_request_and_stops_audio() -> None:
    async def main() -> None:
        latency = SpeechLatency(realtime_factor=1.0, chunk_bytes=960)  # 20 ms per chunk, real time
        async with FakeOpenAIServer(speech_latency=latency) as fake:
            tts = tts_for(fake)
            async with running(tts) as h:
                text = "This is a long sentence that takes several seconds to say out loud."
                await h.push(LLMFullResponseStartFrame(), LLMTextFrame(text=text), LLMFullResponseEndFrame())
                await h.downstream.wait_for_type(TTSAudioRawFrame)
                await h.push(InterruptionFrame())
                cut = len(h.downstream.frames)
                [request] = await fake.wait_for_requests_async(1, endpoint="speech", completed=True)
                assert request.disconnected
                assert request.audio_bytes_sent < round(speech_duration_ms(text) * 48)
                await h.push(LLMFullResponseStartFrame(), LLMTextFrame(text="Okay."), LLMFullResponseEndFrame())
                await h.downstream.wait_for_type(LLMFullResponseEndFrame)  # the interrupted reply's never came
                after = h.downstream.frames[cut:]
                assert [t.text for t in after if isinstance(t, TTSTextFrame)] == ["Okay."]
                assert audio_bytes(after) == round(speech_duration_ms("Okay.") * 48)

    asyncio.run(main())


def test_server_error_then_success_is_retried() -> None:
    async def main() -> None:
        async with FakeOpenAIServer() as fake:
            fake.fail_next(StatusFault(500), endpoint="speech")
            tts = tts_for(fake)
            async with running(tts) as h:
                await h.push(LLMFullResponseStartFrame(), LLMTextFrame(text="Retry me."), LLMFullResponseEndFrame())
                await h.downstream.wait_for_type(LLMFullResponseEndFrame)
                assert [r.status for r in fake.speech_requests] == [500, 200]
                assert audio_bytes(h.downstream.frames) == round(speech_duration_ms("Retry me.") * 48)
                assert tts.retry_count == 1 and tts.error_count == 0 and not h.upstream.of(ErrorFrame)

    asyncio.run(main())


def test_two_server_errors_play_the_apology_and_the_next_reply_works() -> None:
    async def main() -> None:
        async with FakeOpenAIServer() as fake:
            fake.fail_next(StatusFault(500), endpoint="speech", times=2)
            tts = tts_for(fake)
            async with running(tts) as h:
                await h.push(LLMFullResponseStartFrame(), LLMTextFrame(text="Lost."), LLMFullResponseEndFrame())
                await h.downstream.wait_for_type(LLMFullResponseEndFrame)
                assert len(await h.upstream.wait_for_type(ErrorFrame)) == 1 and tts.error_count == 1
                audio = h.downstream.of(TTSAudioRawFrame)
                assert audio and {f.sample_rate for f in audio} == {8000}  # type: ignore[attr-defined]
                assert audio_bytes(audio) == len(tts.apology.pcm)  # type: ignore[union-attr]
                await h.push(LLMFullResponseStartFrame(), LLMTextFrame(text="Back."), LLMFullResponseEndFrame())
                await h.downstream.wait_for_type(LLMFullResponseEndFrame, count=2)
                assert h.downstream.of(TTSTextFrame)[-1].text == "Back."  # type: ignore[attr-defined]

    asyncio.run(main())


def test_unauthorized_is_not_retried() -> None:
    async def main() -> None:
        async with FakeOpenAIServer() as fake:
            fake.fail_next(StatusFault(401, code="invalid_api_key"), endpoint="speech")
            tts = tts_for(fake)
            async with running(tts) as h:
                await h.push(LLMFullResponseStartFrame(), LLMTextFrame(text="No."), LLMFullResponseEndFrame())
                await h.downstream.wait_for_type(LLMFullResponseEndFrame)
                assert len(fake.speech_requests) == 1 and tts.error_count == 1

    asyncio.run(main())


def test_hung_server_gives_the_apology_within_the_configured_bound() -> None:
    async def main() -> None:
        async with FakeOpenAIServer() as fake:
            fake.fail_next(Hang(max_s=10), endpoint="speech", times=2)
            tts = tts_for(fake, first_byte_timeout_secs=0.5, retry_first_byte_timeout_secs=0.5)
            async with running(tts) as h:
                t0 = time.monotonic()
                await h.push(LLMFullResponseStartFrame(), LLMTextFrame(text="Hello?"), LLMFullResponseEndFrame())
                await h.downstream.wait_for_type(TTSAudioRawFrame, timeout=3)
                assert time.monotonic() - t0 < 0.5 * 2 + 1.0
                assert h.downstream.of(TTSAudioRawFrame)[0].sample_rate == 8000  # type: ignore[attr-defined]
                requests = await fake.wait_for_requests_async(2, endpoint="speech", completed=True)
                assert all(r.disconnected for r in requests)  # both hung requests were closed

    asyncio.run(main())


def test_long_input_is_split_under_the_api_limit() -> None:
    text = " ".join(["word"] * 2000)
    pieces = split_speech_input(text)
    assert all(len(p) <= 4096 for p in pieces) and " ".join(pieces) == text
