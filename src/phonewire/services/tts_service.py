"""TTSService: LLM text in, speech out, sentence by sentence, one utterance per reply.

Pipecat's name and hook (``run_tts``). What it does with the frames it sees:

* ``LLMFullResponseStartFrame`` opens a reply; ``LLMTextFrame``s are split into clauses and
  sentences (``services.sentences``) and each piece is synthesised as soon as it is complete,
  the first one at a clause so the first audio comes early; ``LLMFullResponseEndFrame``
  flushes the rest. ``TTSSpeakFrame`` is spoken whole (inside the open reply, if any).
* Downstream, per reply and in order: LLMFullResponseStartFrame, TTSStartedFrame (at the first
  audio), then per piece ``TTSTextFrame(pts_ms=ms of audio already pushed in this utterance)``
  and its TTSAudioRawFrames, then TTSStoppedFrame and LLMFullResponseEndFrame. Every other
  frame keeps its place in that order. ``LatencyStageFrame("tts_first_byte")`` marks the
  reply's first audio byte.
* Pipelining: up to ``1 + lookahead`` pieces are being fetched at once (``tts_synthesis``);
  a speaker task pushes their audio strictly in order.
* An ``InterruptionFrame`` cancels the speaker and every request in flight (closing their
  HTTP streams) and drops pending text before it is forwarded, so no audio of the
  interrupted reply follows it (the generation number guards every push besides).
* A piece that still fails after the bounded retry: ``ErrorFrame`` upstream,
  ``error_count += 1``, the rest of that reply is dropped and the recorded apology
  (``services.apology``) is pushed at once, at its own rate; the next reply works as usual.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from phonewire.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    FrameDirection,
    InputAudioRawFrame,
    InterruptionFrame,
    LatencyStageFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    StartFrame,
    SystemFrame,
    TextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    UninterruptibleFrame,
)
from phonewire.processors.frame_processor import FrameProcessor
from phonewire.services.apology import ApologyAudio, default_apology
from phonewire.services.sentences import SentenceSplitter
from phonewire.services.tts_synthesis import Failed, Synthesis, SynthesisPolicy

__all__ = ["TTSService"]

logger = logging.getLogger("phonewire.services.tts")

DOWNSTREAM = FrameDirection.DOWNSTREAM
DEFAULT_SAMPLE_RATE = 24000
#: Frames and pieces waiting for the speaker. Pieces are bounded by ``lookahead`` already;
#: this bounds the frames that travel between them.
MAX_PENDING_ITEMS = 256
_reply_ids = itertools.count(1)


@dataclass(slots=True, eq=False)
class _Reply:
    """One utterance: its id, whether TTSStartedFrame went out, audio pushed so far."""

    context_id: str
    started: bool = False
    pushed_ms: float = 0.0
    failed: bool = False
    ttfb_started: bool = False


@dataclass(slots=True, frozen=True)
class _ReplyEnd:
    reply: _Reply
    frame: Frame | None


_Item = Frame | Synthesis | _ReplyEnd


class TTSService(FrameProcessor):
    """Base for streaming HTTP/WebSocket TTS services. Subclasses implement ``run_tts``.

    ``sample_rate``: the rate ``run_tts`` produces (None: the StartFrame's
    ``audio_out_sample_rate``, else 24 kHz). ``apology``: True for the packaged recording,
    False for none, or an ``ApologyAudio``. ``lookahead``: pieces fetched ahead of the one
    playing. The timeouts and retry are ``SynthesisPolicy``'s.
    """

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        aggregate_sentences: bool = True,
        push_text_frames: bool = True,
        min_clause_words: int = 4,
        lookahead: int = 1,
        first_byte_timeout_secs: float = 2.0,
        retry_first_byte_timeout_secs: float = 1.0,
        stall_timeout_secs: float = 3.0,
        max_retries: int = 1,
        retry_backoff_secs: float = 0.1,
        apology: ApologyAudio | bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if lookahead < 0 or max_retries < 0:
            raise ValueError("lookahead and max_retries must be >= 0")
        self._init_sample_rate = sample_rate
        self._sample_rate = sample_rate or DEFAULT_SAMPLE_RATE
        self.aggregate_sentences = aggregate_sentences
        self.push_text_frames = push_text_frames
        self.policy = SynthesisPolicy(
            first_byte_timeout_secs=first_byte_timeout_secs,
            retry_first_byte_timeout_secs=retry_first_byte_timeout_secs,
            stall_timeout_secs=stall_timeout_secs,
            max_retries=max_retries,
            retry_backoff_secs=retry_backoff_secs,
        )
        self.apology = default_apology() if apology is True else (apology or None)
        self._splitter = SentenceSplitter(min_clause_words=min_clause_words)
        self._max_inflight = 1 + lookahead
        self._inflight: set[Synthesis] = set()
        self._slot_free = asyncio.Event()
        self._slot_free.set()
        self._items: asyncio.Queue[_Item] = asyncio.Queue(MAX_PENDING_ITEMS)
        self._speaker: asyncio.Task[None] | None = None
        self._reply: _Reply | None = None
        self._generation = 0
        #: Pieces that failed for good (each one pushed an ErrorFrame and the apology).
        self.error_count = 0
        #: Retries taken (a failed attempt followed by another).
        self.retry_count = 0

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    # --- hooks (Pipecat's names) -------------------------------------------------------------

    def run_tts(self, text: str) -> AsyncIterator[bytes]:
        """Yield mono PCM16 at ``self.sample_rate`` for ``text`` (any chunk sizes, odd too).
        Raise to fail; the base class times out, retries and closes the generator."""
        raise NotImplementedError

    def is_retryable(self, error: BaseException) -> bool:
        """Whether a failed attempt may be retried (a subclass says no to e.g. a 401)."""
        return True

    async def start(self, frame: StartFrame) -> None:
        """Called at the StartFrame: open clients here."""

    async def stop(self, frame: EndFrame) -> None:
        """Called when the EndFrame passes, after the last audio."""

    async def cancel(self, frame: CancelFrame) -> None:
        """Called at a CancelFrame."""

    # --- frames in --------------------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if frame.__class__ is InputAudioRawFrame:  # the caller's audio, 50 a second: passed on as is
            await self.push_frame(frame, direction)
            return
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self._sample_rate = self._init_sample_rate or frame.audio_out_sample_rate or DEFAULT_SAMPLE_RATE
            await self.start(frame)
            self._start_speaker()
        elif isinstance(frame, CancelFrame):
            await self._reset()
            await self.cancel(frame)
        elif isinstance(frame, InterruptionFrame):
            await self._reset()
            self._start_speaker()
        elif direction is DOWNSTREAM and not isinstance(frame, SystemFrame):
            await self._handle_data(frame)
            return
        await self.push_frame(frame, direction)

    async def _handle_data(self, frame: Frame) -> None:
        if isinstance(frame, LLMFullResponseStartFrame):
            await self._end_reply(None)  # a reply left open (no End frame) ends here
            self._reply = _Reply(context_id=f"tts-{next(_reply_ids)}")
            await self._items.put(frame)
        elif isinstance(frame, LLMTextFrame) or type(frame) is TextFrame:
            assert isinstance(frame, TextFrame)
            await self._add_text(frame.text)
        elif isinstance(frame, TTSSpeakFrame):
            await self._speak(frame)
        elif isinstance(frame, LLMFullResponseEndFrame):
            await self._end_reply(frame)
        else:
            if isinstance(frame, EndFrame):
                await self._end_reply(None)
            await self._items.put(frame)

    async def _add_text(self, text: str) -> None:
        reply = self._reply or self._open_implicit_reply()
        pieces = self._splitter.push(text) if self.aggregate_sentences else [text]
        for piece in pieces:
            await self._say(reply, piece)

    async def _speak(self, frame: TTSSpeakFrame) -> None:
        if self._reply is not None:
            await self._flush(self._reply)
            await self._say(self._reply, frame.text, append_to_context=frame.append_to_context)
            return
        reply = _Reply(context_id=f"tts-{next(_reply_ids)}")
        await self._say(reply, frame.text, append_to_context=frame.append_to_context)
        await self._items.put(_ReplyEnd(reply, None))

    def _open_implicit_reply(self) -> _Reply:
        """Text with no LLMFullResponseStartFrame: one utterance until the next end."""
        self._reply = _Reply(context_id=f"tts-{next(_reply_ids)}")
        return self._reply

    async def _flush(self, reply: _Reply) -> None:
        rest = self._splitter.flush()
        if rest is not None:
            await self._say(reply, rest)

    async def _end_reply(self, frame: Frame | None) -> None:
        reply, self._reply = self._reply, None
        if reply is None:
            if frame is not None:
                await self._items.put(frame)
            return
        await self._flush(reply)
        self._splitter.reset()
        await self._items.put(_ReplyEnd(reply, frame))

    async def _say(self, reply: _Reply, text: str, *, append_to_context: bool = True) -> None:
        """Start fetching ``text`` (waiting for a free slot) and queue it for the speaker."""
        text = text.strip()
        if not text or reply.failed:
            return
        while len(self._inflight) >= self._max_inflight:
            self._slot_free.clear()
            await self._slot_free.wait()  # freed as pieces finish playing; an interruption frees all
        synthesis = Synthesis(
            text,
            self.run_tts,
            self.policy,
            is_retryable=self.is_retryable,
            reply=reply,
            generation=self._generation,
            append_to_context=append_to_context,
            name=self.name,
        )
        self._inflight.add(synthesis)
        synthesis.start()
        if not reply.ttfb_started:
            reply.ttfb_started = True
            await self.start_ttfb_metrics()
        await self.start_tts_usage_metrics(text)
        await self._items.put(synthesis)

    # --- the speaker --------------------------------------------------------------------------

    def _start_speaker(self) -> None:
        if self._speaker is None:
            self._speaker = asyncio.get_running_loop().create_task(self._speak_loop(), name=f"{self.name}:speaker")

    async def _speak_loop(self) -> None:
        me = asyncio.current_task()
        while self._speaker is me:  # a reset from inside this task retires it at the next item
            item = await self._items.get()
            if isinstance(item, Synthesis):
                await self._play(item)
            elif isinstance(item, _ReplyEnd):
                if item.reply.started:
                    await self.push_frame(TTSStoppedFrame())
                if item.frame is not None:
                    await self.push_frame(item.frame)
            else:
                if isinstance(item, EndFrame):
                    await self.stop(item)
                await self.push_frame(item)

    async def _play(self, synthesis: Synthesis) -> None:
        reply: _Reply = synthesis.reply
        try:
            first = True
            async for chunk in synthesis.chunks():
                if reply.failed or synthesis.generation != self._generation:
                    return
                if isinstance(chunk, Failed):
                    await self._failed(synthesis, chunk)
                    return
                if first:
                    first = False
                    await self._first_audio(synthesis)
                await self._push_audio(reply, chunk, self.sample_rate)
        finally:
            self.retry_count += synthesis.retries
            await self._release(synthesis)

    async def _first_audio(self, synthesis: Synthesis) -> None:
        reply: _Reply = synthesis.reply
        if not reply.started:
            await self._begin(reply)
            await self.stop_ttfb_metrics()
            await self.push_frame(LatencyStageFrame(stage="tts_first_byte", at=time.monotonic(), processor=self.name))
        if self.push_text_frames:
            text = TTSTextFrame(text=synthesis.text, context_id=reply.context_id, pts_ms=reply.pushed_ms)
            if not synthesis.append_to_context:
                text.metadata = {"append_to_context": False}
            await self.push_frame(text)

    async def _begin(self, reply: _Reply) -> None:
        reply.started = True
        await self.push_frame(TTSStartedFrame())

    async def _push_audio(self, reply: _Reply, pcm: bytes, rate: int) -> None:
        reply.pushed_ms += len(pcm) / 2 * 1000 / rate
        await self.push_frame(TTSAudioRawFrame(audio=pcm, sample_rate=rate, context_id=reply.context_id))

    async def _failed(self, synthesis: Synthesis, failure: Failed) -> None:
        reply: _Reply = synthesis.reply
        reply.failed = True
        self.error_count += 1
        logger.warning("! %s: speech failed after %d attempt(s): %r", self.name, failure.attempts, failure.error)
        await self.push_error(f"{self.name}: speech synthesis failed: {failure.error}", exception=failure.error)
        for other in [s for s in self._inflight if s.reply is reply and s is not synthesis]:
            await self._release(other)  # the rest of this reply is not spoken
        if self.apology is not None:
            if not reply.started:
                await self._begin(reply)
            for chunk in self.apology.chunks():
                await self._push_audio(reply, chunk, self.apology.sample_rate)

    async def _release(self, synthesis: Synthesis) -> None:
        self._inflight.discard(synthesis)
        self._slot_free.set()
        await synthesis.close()

    # --- interruptions and shutdown ---------------------------------------------------------

    async def _reset(self) -> None:
        """Drop everything of the current replies: speaker, requests, queued pieces, text."""
        self._generation += 1
        speaker, self._speaker = self._speaker, None
        if speaker is not None and speaker is not asyncio.current_task():
            speaker.cancel()
            await asyncio.gather(speaker, return_exceptions=True)
        kept: list[_Item] = []
        while not self._items.empty():
            item = self._items.get_nowait()
            if isinstance(item, UninterruptibleFrame):
                kept.append(item)
        for item in kept:
            self._items.put_nowait(item)
        inflight, self._inflight = list(self._inflight), set()
        self._slot_free.set()
        await asyncio.gather(*(s.close() for s in inflight))
        self._reply = None
        self._splitter.reset()

    async def cleanup(self) -> None:
        await self._reset()
        await super().cleanup()
