"""DeepgramSTTService against FakeDeepgramServer on 127.0.0.1 (a real WebSocket each time)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import phonewire.audio.g711 as g711
import phonewire.audio.resample as resample
from phonewire.frames import (
    ErrorFrame,
    InterimTranscriptionFrame,
    LatencyStageFrame,
    StartFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
)
from phonewire.services.deepgram import DeepgramSTTService, LiveOptions
from phonewire.services.deepgram import stt as stt_module
from phonewire.services.stt_service import DEFAULT_STT_FAILURE_TEXT
from phonewire.testing.fakes import (
    DropConnection,
    FakeDeepgramServer,
    RejectConnect,
    SendError,
    Utterance,
    voiced_ms,
)
from phonewire.testing.fakes.deepgram_validate import validate_server_message

from ..speech_harness import running
from .dg_harness import recording_pcm, recording_ulaw, silence, sync, turn

HELLO = "I would like to know my order status."
HELLO_ULAW = recording_ulaw("hello")
HELLO_SPEECH_MS = voiced_ms(recording_pcm("hello"))


def service(fake: FakeDeepgramServer, **kwargs: Any) -> DeepgramSTTService:
    return DeepgramSTTService(api_key=fake.api_key, base_url=fake.base_url, **kwargs)


def finals(frames: list[Any]) -> list[TranscriptionFrame]:
    return [f for f in frames if type(f) is TranscriptionFrame]


@sync
async def test_a_turn_is_transcribed_over_a_connection_opened_at_start() -> None:
    async with FakeDeepgramServer(transcripts=[HELLO]) as fake:
        stt = service(fake)
        async with running(stt) as h:
            await fake.wait_for_async(lambda f: len(f.connections) == 1)  # before any audio
            assert fake.connections[0].audio_messages == 0
            await h.push(*turn(HELLO_ULAW))
            await h.downstream.wait_for(lambda fs: any(f.text for f in finals(fs)))
            stage = await h.downstream.wait_for_type(LatencyStageFrame)
        rec = fake.connections[0]
    [final] = [f for f in finals(h.downstream.frames) if f.text]
    assert final.text == HELLO and final.finalized and final.language == "en-US"
    assert stage[0].stage == "transcript"
    assert h.downstream.of(InterimTranscriptionFrame)  # interims while the caller spoke
    assert rec.query["model"] == "nova-3" and rec.query["interim_results"] == "true"
    assert rec.auth_scheme == "Token" and rec.api_key_last4 == fake.api_key[-4:]
    assert rec.finalizes == 1
    for message in rec.sent:
        validate_server_message(message)


@sync
async def test_mulaw_goes_to_deepgram_untouched_with_no_resampling_or_g711_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def counting(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return fn(*args, **kwargs)

        return wrapper

    for name in ("ulaw_to_pcm", "pcm_to_ulaw", "alaw_to_pcm", "pcm_to_alaw"):
        monkeypatch.setattr(stt_module, name, counting(name, getattr(g711, name)), raising=False)
    for table in ("_ENCODE", "_DECODE"):
        patched = {k: counting(f"{table}.{k}", v) for k, v in getattr(stt_module, table).items()}
        monkeypatch.setattr(stt_module, table, patched)
    monkeypatch.setattr(resample, "_to_float", counting("resample", resample._to_float))
    async with FakeDeepgramServer(transcripts=[HELLO]) as fake:
        stt = service(fake)
        async with running(stt) as h:
            await h.push(*turn(HELLO_ULAW))
            await h.downstream.wait_for(lambda fs: any(f.text for f in finals(fs)))
        rec = fake.connections[0]
    assert rec.is_mulaw
    assert bytes(rec.audio) == HELLO_ULAW  # exactly the wire's bytes, in order
    assert calls == [] and stt.transcoded_packets == 0


@sync
async def test_a_connection_dropped_mid_utterance_loses_no_words() -> None:
    async with FakeDeepgramServer(transcripts=[Utterance(HELLO, speech_ms=HELLO_SPEECH_MS)]) as fake:
        fake.fail_next(DropConnection(after_speech_ms=600))
        stt = service(fake)
        async with running(stt) as h:
            await h.push(*silence(400), *turn(HELLO_ULAW))
            await h.downstream.wait_for(lambda fs: any(f.text for f in finals(fs)), timeout=8)
        first, second = fake.connections[:2]
    [final] = [f for f in finals(h.downstream.frames) if f.text]
    assert final.text == HELLO  # every word: the replay reached the new connection
    assert first.finals() == []  # the first connection never finalised the utterance
    assert HELLO_ULAW in bytes(second.audio)  # the whole utterance again, from its start
    assert stt.connection is None and h.upstream.of(ErrorFrame)  # the drop was reported


@sync
async def test_keepalive_holds_a_silent_stretch_on_one_connection() -> None:
    # Deepgram closes after 10 s without data; scaled down: the fake closes after 2 s,
    # the service keeps alive every 1 s, and no audio flows for ~5 s (a 30 s stretch, scaled).
    async with FakeDeepgramServer(transcripts=[HELLO], idle_timeout_s=2.0) as fake:
        stt = service(fake, keepalive_secs=1.0)
        async with running(stt) as h:
            await fake.wait_for_async(lambda f: len(f.connections) == 1)
            await fake.wait_for_async(lambda f: f.connections[0].keepalives >= 5, timeout=8)
            assert fake.connections[0].close_code is None
            await h.push(*turn(HELLO_ULAW))
            await h.downstream.wait_for(lambda fs: any(f.text for f in finals(fs)))
        assert len(fake.connections) == 1 and stt.error_count == 0


@sync
async def test_without_keepalive_the_fake_closes_with_net_0001_and_the_service_reconnects() -> None:
    async with FakeDeepgramServer(idle_timeout_s=1.0) as fake:
        stt = service(fake, keepalive_secs=30.0)
        async with running(stt):
            await fake.wait_for_async(lambda f: len(f.connections) == 2, timeout=5)
            first = fake.connections[0]
            assert first.close_code == 1011 and first.close_reason.startswith("NET-0001")


@sync
async def test_finalize_at_the_vad_stop_brings_the_final_without_endpointing() -> None:
    async with FakeDeepgramServer(transcripts=[HELLO], endpointing_ms=60_000) as fake:
        stt = service(fake)
        async with running(stt) as h:
            await h.push(*turn(HELLO_ULAW))
            await h.downstream.wait_for(lambda fs: any(f.text for f in finals(fs)), timeout=2)
        [final_msg] = fake.connections[0].finals()
    assert final_msg["from_finalize"] is True and final_msg["speech_final"] is False
    assert [f.finalized for f in finals(h.downstream.frames)] == [True]


@sync
async def test_a_down_stt_is_heard_as_the_apology_and_the_next_turn_works() -> None:
    async with FakeDeepgramServer(transcripts=[HELLO]) as fake:
        fake.fail_next(RejectConnect(503, "overloaded"), times=6)
        stt = service(fake, finalize_timeout_secs=0.5, reconnect_backoff_secs=(0.3,))
        async with running(stt) as h:
            await h.push(*turn(HELLO_ULAW))
            await h.downstream.wait_for_type(TTSSpeakFrame, timeout=3)
            await fake.wait_for_async(lambda f: len(f.connections) == 1, timeout=5)
            await h.push(*turn(HELLO_ULAW))
            await h.downstream.wait_for(lambda fs: any(f.text for f in finals(fs)), timeout=5)
    [apology] = h.downstream.of(TTSSpeakFrame)
    assert apology.text == DEFAULT_STT_FAILURE_TEXT and not apology.append_to_context
    assert stt.error_count == 1 and h.upstream.of(ErrorFrame)


@sync
async def test_a_deepgram_error_message_becomes_an_error_frame() -> None:
    async with FakeDeepgramServer(transcripts=[HELLO]) as fake:
        fake.fail_next(SendError("model overloaded", after_speech_ms=200))
        stt = service(fake)
        async with running(stt) as h:
            await h.push(*turn(HELLO_ULAW))
            await h.upstream.wait_for_type(ErrorFrame)
            await h.downstream.wait_for(lambda fs: any(f.text for f in finals(fs)))
    assert stt.server_errors == 1
    assert "model overloaded" in h.upstream.of(ErrorFrame)[0].error


@sync
async def test_a_rejected_key_is_not_retried_and_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeDeepgramServer() as fake:
        stt = DeepgramSTTService(api_key="dg-wrong-secret-key", base_url=fake.base_url)
        async with running(stt) as h:
            await h.upstream.wait_for_type(ErrorFrame)
        assert fake.rejected_handshakes == 1
    assert "401" in h.upstream.of(ErrorFrame)[0].error
    assert "dg-wrong-secret-key" not in caplog.text + repr(stt) + str(vars(stt))


def test_the_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPGRAM_API_KEY", "env-key")
    monkeypatch.setenv("DEEPGRAM_BASE_URL", "ws://127.0.0.1:9")
    stt = DeepgramSTTService()
    assert stt.base_url == "ws://127.0.0.1:9" and "env-key" not in repr(stt)
    monkeypatch.delenv("DEEPGRAM_API_KEY")
    with pytest.raises(ValueError, match="DEEPGRAM_API_KEY"):
        DeepgramSTTService()


@sync
async def test_a_16k_pipeline_streams_linear16_at_its_rate() -> None:
    from phonewire.frames import InputAudioRawFrame
    from phonewire.pipeline import PipelineParams

    async with FakeDeepgramServer() as fake:
        stt = service(fake, live_options=LiveOptions(endpointing=False))
        async with running(stt, params=PipelineParams(audio_in_sample_rate=16000)) as h:
            await h.push(InputAudioRawFrame(audio=b"\x00\x00" * 320, sample_rate=16000))
            await fake.wait_for_async(lambda f: bool(f.connections) and f.connections[0].audio_messages >= 1)
        rec = fake.connections[0]
    assert rec.query["encoding"] == "linear16" and rec.query["sample_rate"] == "16000"
    assert rec.query["endpointing"] == "false" and stt.transcoded_packets == 0
    assert isinstance(h.downstream.of(StartFrame)[0], StartFrame)


@sync
async def test_live_audio_goes_out_three_packets_to_a_frame_and_finalize_flushes_the_rest() -> None:
    """MIN_CHUNK_SECS: 60 ms of μ-law per binary frame, not a frame per 20 ms packet; the packets
    short of a chunk at the VAD's stop go out before the Finalize, so the final hears them."""
    from phonewire.services.deepgram import live_connection

    assert live_connection.MIN_CHUNK_SECS == 0.06
    async with FakeDeepgramServer(transcripts=[HELLO], endpointing_ms=60_000) as fake:
        stt = service(fake)
        async with running(stt) as h:
            await stt.connection.connected.wait()
            packets = silence(20 * 32)
            await h.push(packets[0])  # goes out at once: the sender had not reached its wait yet
            await asyncio.sleep(0.05)
            assert stt.connection.bytes_sent == 160
            for packet in packets[1:]:  # 31 packets, one at a time: 10 full chunks and one left over
                await h.push(packet)
                await asyncio.sleep(0.002)
            await asyncio.sleep(0.05)
            assert stt.connection.bytes_sent == 31 * 160  # the last one waits for company
            await h.push(*turn(HELLO_ULAW))
            await h.downstream.wait_for(lambda fs: any(f.text for f in finals(fs)), timeout=2)
        conn = fake.connections[0]
    assert bytes(conn.audio) == b"".join(p.wire_audio or b"" for p in packets) + HELLO_ULAW
