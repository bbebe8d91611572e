"""SegmentedSTTService: segments between VAD frames, off the inline path, in order, failures heard."""

from __future__ import annotations

import asyncio
import time

from phonewire.frames import (
    EndFrame,
    ErrorFrame,
    InputAudioRawFrame,
    LatencyStageFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
    VADUserStoppingFrame,
)
from phonewire.services.stt_service import (
    DEFAULT_STT_FAILURE_TEXT,
    SegmentedSTTService,
    SegmentTranscriptionFrame,
    STTSegmentSubmittedFrame,
)

from .speech_harness import running

RATE = 8000


def packets(n: int, fill: int = 0) -> list[InputAudioRawFrame]:
    return [InputAudioRawFrame(audio=bytes([fill]) * 320, sample_rate=RATE) for _ in range(n)]


def start() -> list:
    return [VADUserStartedSpeakingFrame(start_secs=0.2), UserStartedSpeakingFrame()]


def stop() -> list:
    return [VADUserStoppedSpeakingFrame(stop_secs=0.8), UserStoppedSpeakingFrame()]


class ScriptedSTT(SegmentedSTTService):
    def __init__(self, *, latency: float = 0.0, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.latency = latency
        self.segments: list[bytes] = []
        self.fail = 0
        self.texts: list[str] = []

    async def run_stt(self, audio: bytes, sample_rate: int) -> str | None:
        assert sample_rate == RATE
        self.segments.append(audio)
        index = len(self.segments)
        await asyncio.sleep(self.latency)  # the service's own latency, not test synchronisation
        if self.fail:
            self.fail -= 1
            raise ConnectionError("scripted failure")
        return self.texts[index - 1] if index <= len(self.texts) else f"segment {index}"


def test_segment_has_pre_roll_and_speech_and_becomes_a_final_transcript() -> None:
    stt = ScriptedSTT(language="en")

    async def main() -> None:
        async with running(stt) as h:
            await h.push(*packets(30, 1), *start(), *packets(25, 2), *stop())
            [frame] = await h.downstream.wait_for_type(TranscriptionFrame)
            assert isinstance(frame, TranscriptionFrame)
            assert (frame.text, frame.finalized, frame.language) == ("segment 1", True, "en")
            [segment] = stt.segments
            assert segment == bytes([1]) * 320 * 15 + bytes([2]) * 320 * 25  # 0.3 s pre-roll + speech
            stages = [f.stage for f in h.downstream.of(LatencyStageFrame)]  # type: ignore[attr-defined]
            assert stages == ["transcript"]
            assert len(h.downstream.of(InputAudioRawFrame)) == 55  # forwarded unchanged

    asyncio.run(main())


def test_inline_audio_never_waits_for_the_network() -> None:
    stt = ScriptedSTT(latency=1.0)

    async def main() -> None:
        async with running(stt) as h:
            t0 = time.monotonic()
            await h.push(*start(), *packets(50), *stop(), *packets(50))
            assert time.monotonic() - t0 < 0.3
            await h.downstream.wait_for_type(TranscriptionFrame)
            first_text = next(i for i, f in enumerate(h.downstream.frames) if isinstance(f, TranscriptionFrame))
            assert sum(isinstance(f, InputAudioRawFrame) for f in h.downstream.frames[:first_text]) == 100

    asyncio.run(main())


def test_overlapping_segments_complete_in_the_order_spoken() -> None:
    stt = ScriptedSTT(latency=0.2)
    stt.texts = ["first", "second"]

    async def main() -> None:
        async with running(stt) as h:
            await h.push(*start(), *packets(10), *stop(), *start(), *packets(5), *stop())
            frames = await h.downstream.wait_for_type(TranscriptionFrame, count=2)
            assert [f.text for f in frames] == ["first", "second"]  # type: ignore[attr-defined]

    asyncio.run(main())


def test_long_speech_is_cut_at_the_segment_bound() -> None:
    stt = ScriptedSTT(max_segment_secs=1.0)

    async def main() -> None:
        async with running(stt) as h:
            await h.push(*start(), *packets(60), *stop())
            frames = await h.downstream.wait_for_type(TranscriptionFrame, count=2)
            assert [f.finalized for f in frames] == [False, True]  # type: ignore[attr-defined]
            assert [len(s) for s in stt.segments] == [8000 * 2, 320 * 10]

    asyncio.run(main())


def test_failure_is_retried_once_then_heard() -> None:
    stt = ScriptedSTT(retry_backoff_secs=0)
    stt.fail = 1

    async def main() -> None:
        async with running(stt) as h:
            await h.push(*start(), *packets(10), *stop())
            await h.downstream.wait_for_type(TranscriptionFrame)
            assert stt.retry_count == 1 and stt.error_count == 0
            stt.fail = 2
            await h.push(*start(), *packets(10), *stop())
            [speak] = await h.downstream.wait_for_type(TTSSpeakFrame)
            assert isinstance(speak, TTSSpeakFrame)
            assert speak.text == DEFAULT_STT_FAILURE_TEXT and speak.append_to_context is False
            assert len(await h.upstream.wait_for_type(ErrorFrame)) == 1 and stt.error_count == 1
            await h.push(*start(), *packets(10), *stop())  # the next turn works
            assert len(await h.downstream.wait_for_type(TranscriptionFrame, count=2)) == 2

    asyncio.run(main())


def test_end_frame_waits_for_the_transcript_in_flight() -> None:
    stt = ScriptedSTT(latency=0.2)

    async def main() -> None:
        async with running(stt) as h:
            await h.push(*start(), *packets(10), *stop(), EndFrame())
            await h.downstream.wait_for_type(EndFrame)
            kinds = [type(f).__name__ for f in h.downstream.frames]
            assert kinds.index("SegmentTranscriptionFrame") < kinds.index("EndFrame")

    asyncio.run(main())


# --- the speculative transcript (VADUserStoppingFrame at early_stop_secs) -------------------


def quick_stop() -> list:
    return [VADUserStoppedSpeakingFrame(stop_secs=0.2), UserStoppedSpeakingFrame()]


def stopping() -> VADUserStoppingFrame:
    return VADUserStoppingFrame(silence_secs=0.1)


def test_a_confirmed_speculative_request_is_the_segments_transcript_and_is_early() -> None:
    stt = ScriptedSTT(latency=0.2)

    async def main() -> None:
        async with running(stt) as h:
            await h.push(*start(), *packets(10, 2), stopping(), *packets(5))
            await asyncio.sleep(0.15)  # the rest of the VAD's stop wait, in real time
            t0 = time.monotonic()
            await h.push(*quick_stop())
            [frame] = await h.downstream.wait_for_type(SegmentTranscriptionFrame)
            assert time.monotonic() - t0 < 0.15  # not the full 0.2 s request after the stop
            assert isinstance(frame, SegmentTranscriptionFrame) and (frame.text, frame.segment) == ("segment 1", 1)
            assert stt.segments == [bytes([2]) * 320 * 10]  # one request: the speech up to the early report
            kinds = [type(f) for f in h.downstream.frames]
            assert kinds.index(STTSegmentSubmittedFrame) < kinds.index(SegmentTranscriptionFrame)
            assert (stt.speculative_submitted, stt.speculative_used, stt.speculative_dropped) == (1, 1, 0)

    asyncio.run(main())


def test_a_result_already_in_follows_its_announcement() -> None:
    stt = ScriptedSTT()  # answers at once: the speculative result is in before the stop

    async def main() -> None:
        async with running(stt) as h:
            await h.push(*start(), *packets(10, 2), stopping())
            await asyncio.sleep(0.05)
            await h.push(*packets(5), *quick_stop())
            await h.downstream.wait_for_type(SegmentTranscriptionFrame)
            kinds = [type(f) for f in h.downstream.frames]
            assert kinds.index(STTSegmentSubmittedFrame) < kinds.index(SegmentTranscriptionFrame)

    asyncio.run(main())


def test_when_the_caller_goes_on_the_speculative_result_is_dropped_and_no_word_is_lost() -> None:
    stt = ScriptedSTT(latency=0.05)
    stt.texts = ["my number is", "my number is five five five"]

    async def main() -> None:
        async with running(stt) as h:
            await h.push(*start(), *packets(10, 1), stopping(), *packets(3))
            await asyncio.sleep(0.1)  # the first speculative request completes: it must not count
            await h.push(*packets(10, 2), stopping(), *packets(3), *quick_stop())
            frames = await h.downstream.wait_for_type(TranscriptionFrame)
            await asyncio.sleep(0.1)
            assert [(f.text, f.segment) for f in h.downstream.of(TranscriptionFrame)] == [  # type: ignore[attr-defined]
                ("my number is five five five", 1)
            ]
            assert frames and len(h.downstream.of(STTSegmentSubmittedFrame)) == 1
            # the second request carries the whole segment, the first one's audio included
            assert stt.segments[1] == bytes([1]) * 320 * 10 + bytes([0]) * 320 * 3 + bytes([2]) * 320 * 10
            assert (stt.speculative_submitted, stt.speculative_used, stt.speculative_dropped) == (2, 1, 1)

    asyncio.run(main())


def test_a_speculative_request_older_than_the_stop_wait_is_not_used() -> None:
    stt = ScriptedSTT()

    async def main() -> None:
        async with running(stt) as h:  # (a lost early report: the audio after it is too long)
            await h.push(*start(), *packets(10, 1), stopping(), *packets(30, 2), *quick_stop())
            [frame] = await h.downstream.wait_for_type(SegmentTranscriptionFrame)
            assert isinstance(frame, SegmentTranscriptionFrame) and frame.segment == 1
            assert stt.segments[-1] == bytes([1]) * 320 * 10 + bytes([2]) * 320 * 30
            assert (stt.speculative_used, stt.speculative_dropped) == (0, 1)

    asyncio.run(main())


def test_speculative_false_ignores_the_early_report() -> None:
    stt = ScriptedSTT(speculative=False)

    async def main() -> None:
        async with running(stt) as h:
            await h.push(*start(), *packets(10, 1), stopping(), *packets(5), *quick_stop())
            await h.downstream.wait_for_type(SegmentTranscriptionFrame)
            assert stt.segments == [bytes([1]) * 320 * 10 + bytes(320 * 5)] and stt.speculative_submitted == 0
            assert len(h.downstream.of(VADUserStoppingFrame)) == 1  # passed on

    asyncio.run(main())
