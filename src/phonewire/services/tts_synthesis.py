"""One sentence's synthesis: a task that streams ``run_tts`` audio into a bounded buffer.

Why a task per sentence: it lets sentence N+1's request start while sentence N's audio is
still being pushed (the TTS service bounds how many run ahead), so the gap between sentences
is a request's time to first byte *overlapped* with playback, not added to it. The task is
also where the time limits live (first byte, stall) and the bounded retry: a retry is only
taken while none of this sentence's audio has been handed on, so the caller never hears a
sentence start twice. Cancelling the task closes the HTTP stream (the generator is closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Failed", "Synthesis", "SynthesisPolicy"]

logger = logging.getLogger("phonewire.services.tts")


@dataclass(frozen=True, slots=True)
class SynthesisPolicy:
    """Time limits and retries for one sentence.

    ``first_byte_timeout_secs`` bounds connecting plus the first audio byte of the first attempt;
    a retry gets ``retry_first_byte_timeout_secs`` (shorter: the caller has already waited once).
    ``stall_timeout_secs`` bounds each later wait for audio. ``chunk_buffer`` is how many
    network chunks may wait for the speaker (backpressure on the HTTP stream beyond it).
    """

    first_byte_timeout_secs: float = 3.0
    retry_first_byte_timeout_secs: float = 1.5
    stall_timeout_secs: float = 3.0
    max_retries: int = 1
    retry_backoff_secs: float = 0.1
    chunk_buffer: int = 64
    close_timeout_secs: float = 1.0


@dataclass(frozen=True, slots=True)
class Failed:
    """The sentence could not be synthesised (after the retry, if one was allowed)."""

    error: BaseException
    attempts: int


_END = None  # buffer sentinel: the audio is complete


class Synthesis:
    """Audio for ``text``: ``start()`` begins the request, ``chunks()`` yields even-length PCM
    (or one ``Failed``), ``close()`` cancels and awaits the task. ``reply`` and ``generation``
    are the TTS service's bookkeeping, carried along."""

    def __init__(
        self,
        text: str,
        fetch: Callable[[str], AsyncIterator[bytes]],
        policy: SynthesisPolicy,
        *,
        is_retryable: Callable[[BaseException], bool],
        reply: Any = None,
        generation: int = 0,
        append_to_context: bool = True,
        name: str = "tts",
    ) -> None:
        self.text = text
        self.reply = reply
        self.generation = generation
        self.append_to_context = append_to_context
        self.attempts = 0
        self.retries = 0
        self._fetch = fetch
        self._policy = policy
        self._is_retryable = is_retryable
        self._name = name
        self._buffer: asyncio.Queue[bytes | Failed | None] = asyncio.Queue(policy.chunk_buffer)
        self._task: asyncio.Task[None] | None = None
        self._delivered = False
        self._closed = False

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self._name}:synthesis")

    async def chunks(self) -> AsyncIterator[bytes | Failed]:
        self.start()
        while not self._closed:
            item = await self._buffer.get()  # the task bounds every wait it makes
            if item is _END:
                return
            yield item
            if isinstance(item, Failed):
                return

    async def close(self) -> None:
        """Stop the request (closing its HTTP stream); idempotent."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._policy.close_timeout_secs):
                    await asyncio.gather(task, return_exceptions=True)

    # --- the task ---------------------------------------------------------------------------

    async def _run(self) -> None:
        policy = self._policy
        while True:
            self.attempts += 1
            try:
                first = self.attempts == 1
                await self._attempt(policy.first_byte_timeout_secs if first else policy.retry_first_byte_timeout_secs)
            except Exception as exc:  # CancelledError is a BaseException: it propagates
                if self._delivered or self.attempts > policy.max_retries or not self._is_retryable(exc):
                    text, attempts = _short(self.text), self.attempts
                    logger.warning("! %s gave up on %r after %d attempt(s): %r", self._name, text, attempts, exc)
                    await self._buffer.put(Failed(exc, self.attempts))
                    return
                self.retries += 1
                logger.info("~ %s retrying %r after %r", self._name, _short(self.text), exc)
                await asyncio.sleep(policy.retry_backoff_secs)
                continue
            await self._buffer.put(_END)
            return

    async def _attempt(self, first_byte_timeout_secs: float) -> None:
        stream = self._fetch(self.text).__aiter__()
        carry = b""
        timeout = first_byte_timeout_secs
        try:
            while True:
                try:
                    async with asyncio.timeout(timeout):
                        chunk = await stream.__anext__()
                except StopAsyncIteration:
                    break
                timeout = self._policy.stall_timeout_secs
                if carry:
                    chunk, carry = carry + chunk, b""
                if len(chunk) % 2:  # PCM16: an odd byte waits for its other half
                    chunk, carry = chunk[:-1], chunk[-1:]
                if chunk:
                    self._delivered = True
                    await self._buffer.put(chunk)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception, TimeoutError):
                    async with asyncio.timeout(self._policy.close_timeout_secs):
                        await aclose()
        if carry:
            logger.debug("- %s: dropped a trailing odd byte", self._name)


def _short(text: str, limit: int = 40) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
