"""TTSService base: sentence pipelining, frame order, pts_ms, interruptions, failures.

A scripted ``run_tts`` (no network) makes each case exact: 48 bytes of audio per character
(1 ms per char at 24 kHz), gates that hold a request open, and failures by text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from phonewire.frames import (
    ErrorFrame,
    InterruptionFrame,
    LatencyStageFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from phonewire.services.apology import ApologyAudio
from phonewire.services.tts_service import TTSService

from .speech_harness import running

BYTES_PER_CHAR = 48


class ScriptedTTS(TTSService):
    def __init__(self, *, chunk: int = 4800, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.chunk = chunk
        self.requests: list[str] = []
        self.closed: list[str] = []
        self.fail: dict[str, int] = {}  # text -> attempts that raise
        self.gates: dict[str, asyncio.Event] = {}  # text -> released before the 2nd chunk
        self.requested = asyncio.Event()

    async def wait_requests(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.requests) < count:
                self.requested.clear()
                await self.requested.wait()

    async def run_tts(self, text: str) -> AsyncIterator[bytes]:
        self.requests.append(text)
        self.requested.set()
        try:
            if self.fail.get(text, 0) > 0:
                self.fail[text] -= 1
                raise ConnectionError("scripted failure")
            audio = bytes(len(text) * BYTES_PER_CHAR)
            for i in range(0, len(audio), self.chunk):
                if i and text in self.gates:
                    await self.gates[text].wait()
                yield audio[i : i + self.chunk]
        finally:
            self.closed.append(text)


def reply(*tokens: str) -> list:
    return [LLMFullResponseStartFrame(), *(LLMTextFrame(text=t) for t in tokens), LLMFullResponseEndFrame()]


def kinds(frames: list) -> list[str]:
    out: list[str] = []
    for f in frames:
        name = type(f).__name__
        if not (name == "TTSAudioRawFrame" and out and out[-1] == name):
            out.append(name)
    return [n for n in out if n not in ("StartFrame", "MetricsFrame", "LatencyStageFrame")]


def test_reply_is_one_utterance_with_text_frames_before_their_audio() -> None:
    tts = ScriptedTTS()

    async def main() -> None:
        async with running(tts) as h:
            await h.push(*reply("Well, let me check", " that for you, it", " might take a moment.", " Done."))
            await h.downstream.wait_for_type(LLMFullResponseEndFrame)
            frames = h.downstream.frames
            assert kinds(frames) == [
                "LLMFullResponseStartFrame", "TTSStartedFrame",
                "TTSTextFrame", "TTSAudioRawFrame", "TTSTextFrame", "TTSAudioRawFrame",
                "TTSTextFrame", "TTSAudioRawFrame", "TTSStoppedFrame", "LLMFullResponseEndFrame",
            ]  # fmt: skip
            texts = h.downstream.of(TTSTextFrame)
            assert [t.text for t in texts] == ["Well, let me check that for you,", "it might take a moment.", "Done."]
            assert tts.requests == [t.text for t in texts]
            pushed = 0.0
            for f in frames:  # pts_ms is the audio already pushed in this utterance
                if isinstance(f, TTSTextFrame):
                    assert f.pts_ms == pushed
                elif isinstance(f, TTSAudioRawFrame):
                    assert f.sample_rate == 24000 and len(f.audio) % 2 == 0
                    pushed += len(f.audio) / 48
            assert pushed == sum(len(t.text) for t in texts)
            stages = h.downstream.of(LatencyStageFrame)
            assert [s.stage for s in stages] == ["tts_first_byte"]  # type: ignore[attr-defined]

    asyncio.run(main())


def test_first_clause_is_requested_before_the_reply_ends() -> None:
    tts = ScriptedTTS()

    async def main() -> None:
        async with running(tts) as h:
            await h.push(LLMFullResponseStartFrame())
            for token in ["Sure", ",", " I can", " help with", " that", ",", " just a", " second"]:
                await h.push(LLMTextFrame(text=token))
            await h.downstream.wait_for_type(TTSAudioRawFrame)
            assert tts.requests == ["Sure, I can help with that,"]
            await h.push(LLMFullResponseEndFrame())
            await h.downstream.wait_for_type(LLMFullResponseEndFrame)
            assert tts.requests == ["Sure, I can help with that,", "just a second"]

    asyncio.run(main())


def test_speak_frame_is_spoken_whole_as_its_own_utterance() -> None:
    tts = ScriptedTTS()

    async def main() -> None:
        async with running(tts) as h:
            await h.push(TTSSpeakFrame(text="Hello. Welcome to the line, how can I help?", append_to_context=False))
            await h.downstream.wait_for_type(TTSStoppedFrame)
            assert tts.requests == ["Hello. Welcome to the line, how can I help?"]
            expected = ["TTSStartedFrame", "TTSTextFrame", "TTSAudioRawFrame", "TTSStoppedFrame"]
            assert kinds(h.downstream.frames) == expected
            assert h.downstream.of(TTSTextFrame)[0].metadata == {"append_to_context": False}

    asyncio.run(main())


def test_odd_chunk_boundaries_keep_samples_whole() -> None:
    tts = ScriptedTTS(chunk=333)

    async def main() -> None:
        async with running(tts) as h:
            await h.push(*reply("One sentence here.", " And another one."))
            await h.downstream.wait_for_type(LLMFullResponseEndFrame)
            audio = h.downstream.of(TTSAudioRawFrame)
            assert all(len(f.audio) % 2 == 0 for f in audio)  # type: ignore[attr-defined]
            total = sum(len(f.audio) for f in audio)  # type: ignore[attr-defined]
            assert total == BYTES_PER_CHAR * len("One sentence here.And another one.")

    asyncio.run(main())


def test_lookahead_bounds_requests_in_flight_and_keeps_order() -> None:
    tts = ScriptedTTS(chunk=480, lookahead=1)
    tts.gates["First one."] = asyncio.Event()

    async def main() -> None:
        async with running(tts) as h:
            await h.push(*reply("First one.", " Second one.", " Third one.", " Fourth one."))
            await h.downstream.wait_for_type(TTSAudioRawFrame)
            await tts.wait_requests(2)
            assert tts.requests == ["First one.", "Second one."]  # one ahead, not more
            tts.gates["First one."].set()
            await h.downstream.wait_for_type(LLMFullResponseEndFrame)
            texts = [t.text for t in h.downstream.of(TTSTextFrame)]
            assert texts == ["First one.", "Second one.", "Third one.", "Fourth one."]

    asyncio.run(main())


def test_interruption_stops_audio_and_closes_the_request() -> None:
    tts = ScriptedTTS(chunk=480)
    tts.gates["This reply is long."] = asyncio.Event()  # never released: the request hangs open

    async def main() -> None:
        async with running(tts) as h:
            await h.push(*reply("This reply is long.", " It goes on and on."))
            await h.downstream.wait_for_type(TTSAudioRawFrame)
            await h.push(InterruptionFrame())
            assert "This reply is long." in tts.closed  # closed before the interruption went on
            cut = len(h.downstream.frames)
            assert isinstance(h.downstream.frames[-1], InterruptionFrame)
            await h.push(*reply("Fresh reply."))
            await h.downstream.wait_for_type(LLMFullResponseEndFrame)
            after = h.downstream.frames[cut:]
            assert [t.text for t in after if isinstance(t, TTSTextFrame)] == ["Fresh reply."]
            assert kinds(after)[0] == "LLMFullResponseStartFrame"

    asyncio.run(main())


def test_failed_attempt_is_retried_once() -> None:
    tts = ScriptedTTS(retry_backoff_secs=0)
    tts.fail["Hello there."] = 1

    async def main() -> None:
        async with running(tts) as h:
            await h.push(*reply("Hello there."))
            await h.downstream.wait_for_type(LLMFullResponseEndFrame)
            assert tts.requests == ["Hello there.", "Hello there."]
            assert tts.error_count == 0 and tts.retry_count == 1
            assert not h.upstream.of(ErrorFrame)

    asyncio.run(main())


def test_failure_after_retry_plays_the_apology_and_the_next_reply_works() -> None:
    apology = ApologyAudio(pcm=bytes(1600 * 2), sample_rate=8000, text="sorry")
    tts = ScriptedTTS(retry_backoff_secs=0, apology=apology)
    tts.fail["Broken sentence."] = 2

    async def main() -> None:
        async with running(tts) as h:
            await h.push(*reply("Broken sentence.", " Never said."))
            await h.downstream.wait_for_type(LLMFullResponseEndFrame)
            errors = await h.upstream.wait_for_type(ErrorFrame)
            assert len(errors) == 1 and tts.error_count == 1
            audio = h.downstream.of(TTSAudioRawFrame)
            assert {f.sample_rate for f in audio} == {8000}  # type: ignore[attr-defined]
            assert sum(len(f.audio) for f in audio) == len(apology.pcm)  # type: ignore[attr-defined]
            assert kinds(h.downstream.frames) == [
                "LLMFullResponseStartFrame", "TTSStartedFrame", "TTSAudioRawFrame",
                "TTSStoppedFrame", "LLMFullResponseEndFrame",
            ]  # fmt: skip
            await h.push(*reply("Working again."))
            await h.downstream.wait_for_type(LLMFullResponseEndFrame, count=2)
            assert h.downstream.of(TTSTextFrame)[-1].text == "Working again."

    asyncio.run(main())


def test_hang_falls_back_to_the_apology_within_the_deadline() -> None:
    class HangingTTS(ScriptedTTS):
        async def run_tts(self, text: str) -> AsyncIterator[bytes]:
            self.requests.append(text)
            try:
                await asyncio.Event().wait()
                yield b""
            finally:
                self.closed.append(text)

    tts = HangingTTS(first_byte_timeout_secs=0.2, retry_first_byte_timeout_secs=0.2, retry_backoff_secs=0)

    async def main() -> None:
        async with running(tts) as h:
            t0 = time.monotonic()
            await h.push(*reply("Are you there?"))
            await h.downstream.wait_for_type(TTSAudioRawFrame, timeout=2)
            assert time.monotonic() - t0 < 2.0
            assert tts.requests == ["Are you there?"] * 2 and tts.closed == tts.requests
            assert h.downstream.of(TTSAudioRawFrame)[0].sample_rate == 8000  # the packaged recording

    asyncio.run(main())


def test_ttfb_and_usage_metrics_when_enabled() -> None:
    from phonewire.frames import MetricsFrame, TTFBMetricsData, TTSUsageMetricsData
    from phonewire.pipeline import PipelineParams

    tts = ScriptedTTS()
    params = PipelineParams(enable_metrics=True, enable_usage_metrics=True)

    async def main() -> None:
        async with running(tts, params=params) as h:
            await h.push(*reply("First sentence here.", " Second one."))
            await h.downstream.wait_for_type(LLMFullResponseEndFrame)
            data = [d for f in h.downstream.of(MetricsFrame) for d in f.data]  # type: ignore[attr-defined]
            assert len([d for d in data if isinstance(d, TTFBMetricsData)]) == 1  # once per reply
            usage = [d.value for d in data if isinstance(d, TTSUsageMetricsData)]
            assert usage == [len("First sentence here."), len("Second one.")]

    asyncio.run(main())
