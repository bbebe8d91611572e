"""PiperTTSService: the bundled voice speaks a reply sentence by sentence, at its own rate, off the loop."""

from __future__ import annotations

import asyncio
import threading

from phonewire.frames import (
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from phonewire.services.local import PiperTTSService

from ..speech_harness import running

SENTENCES = ["We are open from eight in the morning until six in the evening.", "On Sundays we only deliver."]


def test_a_two_sentence_reply_is_two_pieces_of_plausible_length_at_the_voice_rate() -> None:
    async def main() -> tuple[PiperTTSService, list[object], set[str]]:
        tts = PiperTTSService()
        await tts.load()
        voice = tts._loaded.voice  # type: ignore[union-attr]
        threads: set[str] = set()
        original = voice.synthesize

        def spy(*args: object, **kwargs: object) -> object:
            threads.add(threading.current_thread().name)
            return original(*args, **kwargs)

        voice.synthesize = spy
        try:
            async with running(tts) as h:
                await h.push(LLMFullResponseStartFrame())
                for word in " ".join(SENTENCES).split(" "):  # as an LLM streams it
                    await h.push(LLMTextFrame(text=word + " "))
                await h.push(LLMFullResponseEndFrame())
                await h.downstream.wait_for_type(LLMFullResponseEndFrame, timeout=30)
                frames = list(h.downstream.frames)
        finally:
            voice.synthesize = original
        return tts, frames, threads

    tts, frames, threads = asyncio.run(main())
    assert tts.sample_rate == 22050
    texts = [f.text for f in frames if isinstance(f, TTSTextFrame)]
    assert [t.strip() for t in texts] == SENTENCES
    assert threads and all(name.startswith("phonewire-piper") for name in threads)

    # Audio per piece: between the piece's TTSTextFrame and the next one.
    durations: list[float] = []
    for frame in frames:
        if isinstance(frame, TTSTextFrame):
            durations.append(0.0)
        elif isinstance(frame, TTSAudioRawFrame):
            assert frame.sample_rate == 22050
            durations[-1] += len(frame.audio) / 2 / frame.sample_rate
    words = [len(s.split()) for s in SENTENCES]
    # Speech runs at ~2-4 words a second; Piper adds a little silence at each end.
    for n, secs in zip(words, durations, strict=True):
        assert n / 4.5 < secs < n / 1.5 + 0.8, (n, secs)
    kinds = [type(f) for f in frames if isinstance(f, TTSStartedFrame | TTSStoppedFrame)]
    assert kinds == [TTSStartedFrame, TTSStoppedFrame]  # one utterance for the reply
