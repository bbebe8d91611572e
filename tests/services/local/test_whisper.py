"""WhisperSTTService: the bundled tiny.en transcribes a committed 8 kHz espeak recording, off the loop."""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time

from phonewire.audio.wav import read_wav
from phonewire.frames import (
    InputAudioRawFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from phonewire.services.local import WhisperSTTService
from phonewire.services.local import whisper as whisper_module
from phonewire.testing import builtin_recording

from ..speech_harness import running


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def test_the_bundled_model_transcribes_an_espeak_recording_in_a_thread_while_the_loop_keeps_ticking() -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # tests/services/local/conftest.py: no hub, no download
    pcm, rate, _ = read_wav(builtin_recording("espeak_hours"))
    assert rate == 8000

    async def main() -> tuple[str, list[float], set[str]]:
        stt = WhisperSTTService()
        await stt.load()  # the shared model, loaded off the loop
        model = stt._loaded.model  # type: ignore[union-attr]
        threads: set[str] = set()
        original = model.transcribe

        def spy(*args: object, **kwargs: object) -> object:
            threads.add(threading.current_thread().name)
            return original(*args, **kwargs)

        model.transcribe = spy
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        tick = asyncio.get_running_loop().create_task(ticker())
        try:
            text = await stt.run_stt(pcm, rate)
        finally:
            done.set()
            await tick
            model.transcribe = original
        return text or "", gaps, threads

    text, gaps, threads = asyncio.run(main())
    assert words(text) == ["what", "are", "your", "opening", "hours"], text
    assert threads and all(name.startswith("phonewire-whisper") for name in threads)
    assert threading.current_thread().name not in threads
    # Inference took tens of ticks; none of them waited for it.
    assert len(gaps) >= 10 and max(gaps) < 0.1, (len(gaps), max(gaps))


def test_one_model_per_process_whatever_the_number_of_services() -> None:
    async def main() -> tuple[object, object]:
        a, b = WhisperSTTService(), WhisperSTTService()
        await asyncio.gather(a.load(), b.load())
        return a._loaded, b._loaded

    first, second = asyncio.run(main())
    assert first is second
    assert len(whisper_module._models) == 1


def test_a_vad_segment_of_phone_audio_becomes_one_final_transcript() -> None:
    pcm, rate, _ = read_wav(builtin_recording("opening_hours"))

    async def main() -> list[TranscriptionFrame]:
        stt = WhisperSTTService(sample_rate=8000)
        async with running(stt) as h:
            silence = bytes(320)
            await h.push(UserStartedSpeakingFrame())
            for i in range(0, len(pcm), 320):
                await h.push(InputAudioRawFrame(audio=pcm[i : i + 320].ljust(320, b"\0"), sample_rate=rate))
            for _ in range(10):
                await h.push(InputAudioRawFrame(audio=silence, sample_rate=rate))
            await h.push(UserStoppedSpeakingFrame())
            frames = await h.downstream.wait_for_type(TranscriptionFrame, timeout=20)
        return [f for f in frames if isinstance(f, TranscriptionFrame)]

    [frame] = asyncio.run(main())
    assert words(frame.text) == ["what", "are", "your", "opening", "hours"]
    assert frame.finalized and frame.language == "en"
