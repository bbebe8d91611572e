"""/audio/speech and /audio/transcriptions through the official SDK."""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai.types import Model
from openai.types.audio import Transcription, TranscriptionVerbose

from phonewire.testing.fakes import (
    FakeOpenAIServer,
    SpeechLatency,
    SyntheticVoice,
    speech_duration_ms,
    validate_response,
    validate_speech_request,
    validate_transcription_form,
    wav_header,
    word_spans,
)
from testing.fakes.conftest import async_client

TEXT = "Your order has shipped."
WAV = wav_header(16000, sample_rate=16000) + b"\x01\x00" * 8000  # 0.5 s


def test_speech_pcm_streams_exactly_the_predicted_number_of_bytes(fake: FakeOpenAIServer) -> None:
    async def scenario() -> tuple[bytes, int]:
        async with async_client(fake) as sdk:
            async with sdk.audio.speech.with_streaming_response.create(
                model="tts-1", voice="alloy", input=TEXT, response_format="pcm"
            ) as response:
                pieces = [p async for p in response.iter_bytes()]
                return b"".join(pieces), len(pieces)

    audio, pieces = asyncio.run(scenario())
    assert len(audio) == speech_duration_ms(TEXT) * 48 == fake.voice.byte_length(TEXT)
    assert speech_duration_ms(TEXT) == (4 + 5 + 3 + 8) * 65 + 3 * 80  # chars x 65 ms + gaps
    [record] = fake.wait_for_requests(1, endpoint="speech", completed=True)
    assert record.headers["accept"] == "application/octet-stream"
    assert record.audio_bytes_sent == len(audio)
    validate_speech_request(record.json)


def test_speech_is_sent_with_chunked_transfer_encoding(fake: FakeOpenAIServer) -> None:
    body = {"model": "tts-1", "voice": "alloy", "input": TEXT, "response_format": "pcm"}
    with httpx.stream("POST", f"{fake.base_url}/audio/speech", json=body, headers={"authorization": "Bearer k"}) as r:
        assert r.headers["transfer-encoding"] == "chunked" and r.headers["content-type"] == "audio/pcm"
        assert len(r.read()) == fake.voice.byte_length(TEXT)


def test_each_word_is_a_tone_burst_where_word_spans_says_separated_by_silence(client: openai.OpenAI) -> None:
    audio = client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="pcm").read()
    samples = np.frombuffer(audio, dtype="<i2").astype(np.int32)
    spans = word_spans(TEXT)
    assert [s.word for s in spans] == ["Your", "order", "has", "shipped."]
    for span, following in zip(spans, spans[1:], strict=False):
        burst = samples[span.start_byte // 2 + 240 : span.end_byte // 2 - 240]
        gap = samples[span.end_byte // 2 : following.start_byte // 2]
        assert np.abs(burst).max() > 3000 and np.abs(gap).max() == 0


def test_speech_wav_has_a_header_that_describes_the_pcm(client: openai.OpenAI) -> None:
    audio = client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="wav").read()
    assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
    assert (
        audio[44:] == client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="pcm").read()
    )
    assert int.from_bytes(audio[24:28], "little") == 24000


def test_speech_pacing_follows_the_realtime_factor_and_first_byte_delay(fake: FakeOpenAIServer) -> None:
    fake.speech_latency = SpeechLatency(first_byte_s=0.1, realtime_factor=4.0, chunk_bytes=4800)
    text = "one two three"  # 11 chars: 715 ms + 160 ms of gaps = 875 ms of audio
    began = time.monotonic()
    with openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as sdk:
        with sdk.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=text, response_format="pcm"
        ) as response:
            data = b"".join(response.iter_bytes())
    elapsed = time.monotonic() - began
    [record] = fake.wait_for_requests(1, completed=True)
    assert len(data) == fake.voice.byte_length(text)
    assert record.first_byte_at is not None and record.first_byte_at - record.arrived_at >= 0.1
    last_chunk_offset = (len(data) - 1) // 4800 * 4800
    assert elapsed >= 0.1 + last_chunk_offset / 48000 / 4.0


@pytest.mark.parametrize("fmt", ["mp3", "opus"])
def test_speech_formats_the_fake_cannot_make_are_a_clear_400(client: openai.OpenAI, fmt: str) -> None:
    with pytest.raises(openai.BadRequestError, match="pcm"):
        client.audio.speech.create(model="tts-1", voice="alloy", input="hi", response_format=fmt)  # type: ignore[arg-type]


def test_transcription_json_returns_the_scripted_text_and_records_the_upload(
    fake: FakeOpenAIServer, client: openai.OpenAI
) -> None:
    fake.script_transcripts("I need to reschedule.")
    result = client.audio.transcriptions.create(file=("turn.wav", WAV), model="whisper-1", language="en", prompt="p")
    assert result.text == "I need to reschedule."
    [record] = fake.wait_for_requests(1, endpoint="transcriptions", completed=True)
    assert record.form == {"model": "whisper-1", "language": "en", "prompt": "p"}
    assert record.audio == WAV and record.audio_bytes == len(WAV) and record.audio_filename == "turn.wav"
    validate_response(Transcription, record.response_json)
    validate_transcription_form(record.form)


def test_transcription_text_and_verbose_json(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    fake.script_transcripts("plain words", "three more words")
    text = client.audio.transcriptions.create(file=("a.wav", WAV), model="whisper-1", response_format="text")
    verbose = client.audio.transcriptions.create(file=("a.wav", WAV), model="whisper-1", response_format="verbose_json")
    assert text == "plain words"
    assert verbose.text == "three more words" and verbose.duration == 0.5
    assert [w.word for w in verbose.words or []] == ["three", "more", "words"]
    validate_response(TranscriptionVerbose, fake.wait_for_requests(2, completed=True)[1].response_json)


def test_transcription_responder_sees_the_audio_and_the_form(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    fake.transcription_responder = lambda audio, form: f"{len(audio)} bytes for {form['model']}"
    assert client.audio.transcriptions.create(file=("a.wav", WAV), model="gpt-4o-transcribe").text == (
        f"{len(WAV)} bytes for gpt-4o-transcribe"
    )


def test_transcription_latency_delays_the_answer(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    fake.transcription_latency_s = 0.2
    client.audio.transcriptions.create(file=("a.wav", WAV), model="whisper-1")
    [record] = fake.wait_for_requests(1, completed=True)
    assert record.first_byte_at is not None and record.first_byte_at - record.arrived_at >= 0.2


def test_an_upload_over_the_cap_is_a_413_and_is_still_recorded() -> None:
    with FakeOpenAIServer(max_upload_bytes=1000) as fake:
        with openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as sdk:
            with pytest.raises(openai.APIStatusError) as info:
                sdk.audio.transcriptions.create(file=("a.wav", b"\0" * 5000), model="whisper-1")
        assert info.value.status_code == 413
        assert fake.requests[0].endpoint == "transcriptions"


def test_models_are_listed_and_retrievable(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    listed = client.models.list().data
    assert [m.id for m in listed] == list(fake.models)
    assert client.models.retrieve("whisper-1").id == "whisper-1"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")
    for entry in fake.requests[0].response_json["data"]:
        validate_response(Model, entry)


@given(st.lists(st.text(alphabet="abcdefghij.,'", min_size=1, max_size=12), min_size=1, max_size=8))
def test_word_spans_tile_the_audio_in_order(words: list[str]) -> None:
    text = " ".join(words)
    voice = SyntheticVoice()
    spans = voice.word_spans(text)
    assert [s.word for s in spans] == words
    assert spans[0].start_ms == 0 and spans[-1].end_ms == voice.duration_ms(text)
    for span, nxt in zip(spans, spans[1:], strict=False):
        assert nxt.start_ms - span.end_ms == pytest.approx(voice.word_gap_ms)
    assert all(s.end_ms - s.start_ms == pytest.approx(len(s.word) * voice.ms_per_char) for s in spans)
    assert len(voice.synthesize(text)) == voice.byte_length(text) == spans[-1].end_byte
    heard = voice.heard_words(text, spans[len(spans) // 2].end_ms)
    assert heard == words[: len(spans) // 2 + 1]
