"""ElevenLabsTTSService against FakeElevenLabsServer (a real local WebSocket server): word timing
to TTSTextFrames, the 5-context limit respected over many short interrupted replies, barge-in
closes the context, faults heard as an apology, keep-alive, close_socket, no key in logs."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from phonewire.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSWireAudioFrame,
)
from phonewire.services.elevenlabs import ElevenLabsTTSService
from phonewire.testing.fakes import FakeElevenLabsServer
from phonewire.testing.fakes.elevenlabs_validate import validate_client_message, validate_server_message
from phonewire.testing.fakes.ws_fake import DropConnection, ErrorReply, Stall

from ..speech_harness import Harness, running

KEY = "sk-el-very-secret"


def _tts(fake: FakeElevenLabsServer, **kw: Any) -> ElevenLabsTTSService:
    return ElevenLabsTTSService(api_key=KEY, base_url=fake.base_url, voice_id="voice-1", **kw)


async def _reply(h: Harness, *tokens: str, end: bool = True) -> None:
    await h.push(LLMFullResponseStartFrame(), *[LLMTextFrame(text=t) for t in tokens])
    if end:
        await h.push(LLMFullResponseEndFrame())


async def _ends(h: Harness, count: int, timeout: float = 10.0) -> None:
    await h.downstream.wait_for_type(LLMFullResponseEndFrame, count, timeout)


def _check_messages(fake: FakeElevenLabsServer) -> None:
    for m in fake.received:
        validate_client_message(m.data)
    for m in fake.sent:
        validate_server_message({k: ("" if k == "audio" else v) for k, v in m.data.items()})


def test_word_timing_becomes_tts_text_frames_at_the_fake_word_starts() -> None:
    async def main(fake: FakeElevenLabsServer) -> tuple[list[Frame], ElevenLabsTTSService]:
        tts = _tts(fake)
        async with running(tts) as h:
            await _reply(h, "Hel", "lo the", "re my friend, ", "your parcel is on its way. ", "Bye.")
            await _ends(h, 1)
            return list(h.downstream.frames), tts

    with FakeElevenLabsServer(api_key=KEY) as fake:
        frames, tts = asyncio.run(main(fake))
        [ctx] = fake.contexts.values()
        received = [m.data for m in fake.received]
        _check_messages(fake)
    words = [f for f in frames if isinstance(f, TTSTextFrame)]
    assert [w.text.strip() for w in words] == [w.word for w in ctx.words]
    assert [w.pts_ms for w in words] == pytest.approx([w.start_ms for w in ctx.words], abs=1)
    audio = [f for f in frames if isinstance(f, TTSAudioRawFrame)]
    assert audio and all(isinstance(f, TTSWireAudioFrame) and f.sample_rate == 8000 for f in audio)
    assert sum(len(f.audio) for f in audio) == ctx.audio_bytes
    kinds = [type(f) for f in frames]
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)
    # the reply's end: flush, then close_context; the init carried the generation config
    assert received[0] == {
        "text": " ",
        "context_id": ctx.context_id,
        "generation_config": ctx.settings["generation_config"],
    }
    tail = [m for m in received if "flush" in m or "close_context" in m]
    assert tail == [
        {"context_id": ctx.context_id, "flush": True},
        {"context_id": ctx.context_id, "close_context": True},
    ]
    assert ctx.final and tts.contexts_held == 0 and tts.error_count == 0
    assert fake.conns[1].query["output_format"] == "ulaw_8000"


def test_the_five_context_limit_holds_over_many_short_interrupted_replies() -> None:
    """Each reply is flushed and closed, then interrupted at its first audio while the fake is
    still generating it (real-time pacing): ElevenLabs keeps such a context until its isFinal,
    so a client that freed the slot at the barge-in would open a sixth and lose the socket."""

    async def main(fake: FakeElevenLabsServer) -> tuple[ElevenLabsTTSService, int]:
        tts = _tts(fake)
        async with running(tts) as h:
            for i in range(12):
                before = len(h.downstream.of(TTSWireAudioFrame))
                if i % 3 == 2:  # interrupted before its end (over 50 characters: generating)
                    await _reply(h, f"Reply number {i} is cut short before its end, so it is stopped ", end=False)
                else:
                    await _reply(h, f"Reply number {i} is short but it takes a while to say.")
                await h.downstream.wait_for_type(TTSWireAudioFrame, before + 1)  # its first audio
                await h.push(InterruptionFrame())
            await _reply(h, "And this one plays to the end.")
            await _ends(h, 1, timeout=20)
            return tts, len(h.upstream.of(ErrorFrame))

    with FakeElevenLabsServer(api_key=KEY, realtime=1.0, first_byte_s=0.02) as fake:
        tts, errors = asyncio.run(main(fake))
        conn = fake.conns[1]
        _check_messages(fake)
        closes = {m.data["context_id"] for m in fake.received if m.data.get("close_context")}
        last = list(fake.contexts.values())[-1]
    assert errors == 0 and tts.error_count == 0
    assert fake.connections == 1 and conn.closed_by in (None, "close_socket")  # never max_active_conversations
    assert conn.peak_active == 5  # the limit was reached, and never passed
    assert len(conn.contexts) == 13 and closes == set(conn.contexts)  # every context closed
    assert len(tts.cancelled_contexts) == 12
    assert last.final and not last.cancelled and last.words
    stopped = [c for c in conn.contexts.values() if c.cancelled]
    assert len(stopped) == 4 and all(not c.flushed and c.final for c in stopped)


def test_an_interruption_mid_reply_closes_its_context_and_late_audio_is_dropped() -> None:
    async def main(fake: FakeElevenLabsServer) -> ElevenLabsTTSService:
        tts = _tts(fake, generation_config={"chunk_length_schedule": [50]})
        async with running(tts) as h:
            await _reply(h, "This is a fairly long first sentence that the fake starts speaking ", end=False)
            await h.downstream.wait_for_type(TTSWireAudioFrame)
            await h.push(InterruptionFrame())
            await _reply(h, "Sorry, go ahead.")
            await _ends(h, 1)
            said = [f.text.strip() for f in h.downstream.frames if isinstance(f, TTSTextFrame)]
            assert said[-3:] == ["Sorry,", "go", "ahead."]
            return tts

    with FakeElevenLabsServer(api_key=KEY, realtime=1.0) as fake:
        tts = asyncio.run(main(fake))
        first, second = fake.contexts.values()
        _check_messages(fake)
        received = [m.data for m in fake.received]
    assert tts.cancelled_contexts == [first.context_id]
    assert {"context_id": first.context_id, "close_context": True} in received
    assert first.cancelled and first.final and not first.flushed  # stopped, never flushed
    assert second.final and not second.cancelled
    assert tts.contexts_held == 0


@pytest.mark.parametrize("fault", [ErrorReply("Internal error", "internal_error"), DropConnection(), Stall()])
def test_a_fault_is_heard_as_an_apology_and_the_next_reply_works(fault: Any) -> None:
    async def main(fake: FakeElevenLabsServer) -> tuple[ElevenLabsTTSService, Harness]:
        tts = _tts(fake, first_byte_timeout_secs=0.5)
        async with running(tts) as h:
            fake.fail_next(fault)
            await _reply(h, "This reply fails.")
            await _ends(h, 1)
            await h.upstream.wait_for_type(ErrorFrame)
            apology = [f for f in h.downstream.of(TTSAudioRawFrame) if not isinstance(f, TTSWireAudioFrame)]
            assert apology, "the recorded apology is played"
            await _reply(h, "This one works.")
            await _ends(h, 2)
            said = [f.text.strip() for f in h.downstream.frames if isinstance(f, TTSTextFrame)]
            assert said[-3:] == ["This", "one", "works."]
            return tts, h

    with FakeElevenLabsServer(api_key=KEY) as fake:
        tts, _ = asyncio.run(main(fake))
    assert tts.error_count == 1
    if not isinstance(fault, Stall):
        assert tts.connections == 2  # ElevenLabs closes the socket after an error: reopened


@pytest.mark.parametrize("keepalive", [True, False])
def test_the_keepalive_holds_an_idle_socket_past_the_inactivity_timeout(keepalive: bool) -> None:
    async def main(fake: FakeElevenLabsServer) -> ElevenLabsTTSService:
        tts = _tts(fake, keepalive_secs=0.1 if keepalive else None)
        async with running(tts) as h:
            await _reply(h, "Hello.")
            await _ends(h, 1)
            started = time.monotonic()
            await asyncio.sleep(1.2)  # idle 3x the fake's 0.4 s timeout: real time is what is tested
            assert time.monotonic() - started >= 1.2
            await _reply(h, "Still here.")
            await _ends(h, 2)
            return tts

    with FakeElevenLabsServer(api_key=KEY, inactivity_timeout_s=0.4) as fake:
        tts = asyncio.run(main(fake))
        closed_by = fake.conns[1].closed_by
    assert tts.error_count == 0
    if keepalive:
        assert tts.connections == 1 and closed_by in (None, "close_socket")
    else:
        assert closed_by == "input_timeout_exceeded" and tts.connections == 2


def test_the_end_sends_close_socket_and_the_key_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def main(fake: FakeElevenLabsServer) -> ElevenLabsTTSService:
        tts = _tts(fake)
        async with running(tts) as h:
            fake.fail_next(ErrorReply("boom", "internal_error"))  # logged failures, a reconnect
            await _reply(h, "One.")
            await _ends(h, 1)
            await _reply(h, "Two.")
            await _ends(h, 2)
            await h.push(EndFrame())
            await h.downstream.wait_for_type(EndFrame)
            assert KEY not in repr(tts) and KEY not in repr(tts.protocol)
            return tts

    caplog.set_level(logging.DEBUG)  # websockets logs every handshake header at DEBUG
    with FakeElevenLabsServer(api_key=KEY) as fake:
        asyncio.run(main(fake))
        last = fake.conns[max(fake.conns)]
        received = [m.data for m in fake.received]
    assert received[-1] == {"close_socket": True} and last.closed_by == "close_socket"
    assert "xi-api-key: <redacted>" in caplog.text and KEY not in caplog.text.replace(
        "< xi-api-key: " + KEY,
        "",  # the fake server's own handshake log is not ours
    )
