"""LocalSmartTurnAnalyzerV3: Smart Turn v3.2 on this machine, for one call.

What it holds is the call's recent audio: a bounded chunk list (the model sees 8 s at most), at
the pipeline rate. On :meth:`analyze_end_of_turn` it takes the turn so far - from
``pre_speech_ms`` before the first speech of the turn, plus the VAD's start delay, so the first
syllable is not clipped (pipecat#3375) - and hands it to the process-wide
:class:`~phonewire.audio.turn.smart_turn.runner.SmartTurnRunner`. Resampling to 16 kHz, the
features and the model all run on the runner's worker thread.

The audio is taken whole each time (the README's advice: re-run on the whole turn after the
caller resumes, not on the new fragment).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from phonewire.audio.turn.base_turn_analyzer import BaseTurnAnalyzer, EndOfTurnState, TurnVerdict
from phonewire.audio.turn.smart_turn.runner import SmartTurnRunner
from phonewire.exceptions import ConfigurationError

__all__ = ["LocalSmartTurnAnalyzerV3", "SmartTurnParams"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SmartTurnParams:
    """``pre_speech_ms``: audio kept before the speech start (Pipecat's 500 ms);
    ``max_duration_secs``: the model's window (8 s); ``threshold``: P(complete) above which the
    verdict is COMPLETE (the model's own 0.5)."""

    pre_speech_ms: float = 500.0
    max_duration_secs: float = 8.0
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.pre_speech_ms <= 2000:
            raise ConfigurationError(f"SmartTurnParams(pre_speech_ms={self.pre_speech_ms}): use 0..2000")
        if not 0 < self.max_duration_secs <= 8:
            raise ConfigurationError(f"SmartTurnParams(max_duration_secs={self.max_duration_secs}): use (0, 8]")
        if not 0 < self.threshold < 1:
            raise ConfigurationError(f"SmartTurnParams(threshold={self.threshold}): use (0, 1)")


#: The silence the model sees at a pause when it runs after a VAD stop of 0.2 s (Pipecat's
#: placement, and phonewire's TURN_ANALYZER_VAD_PARAMS). A speculative analysis, at the VAD's
#: early stop report, has less, and on tests/fixtures/turns the model was then less sure of
#: complete turns (the benchmark's answers came ~250 ms later: more "unsure" waits), so the
#: silence is made up to this; padded, the verdicts are those of the confirmed pause.
PAUSE_SILENCE_SECS = 0.2


def _pad_silence(audio: bytes, have: int, want: int) -> bytes:
    """``audio`` ending in ``have`` bytes of the caller's silence, extended to ``want`` by
    repeating that silence (the line's own noise floor, not digital zeros)."""
    tail = audio[len(audio) - min(have, len(audio)) :]
    if not tail:
        return audio
    need = want - have
    return audio + (tail * (need // len(tail) + 1))[:need]


class LocalSmartTurnAnalyzerV3(BaseTurnAnalyzer):
    """One per call (like the VAD analyzer); the model and the worker are shared."""

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        params: SmartTurnParams | None = None,
        runner: SmartTurnRunner | None = None,
        vad_start_secs: float = 0.2,
    ) -> None:
        self._params = params or SmartTurnParams()
        self._runner = runner
        self._vad_start_secs = vad_start_secs
        self._rate: int | None = None
        self._chunks: deque[bytes] = deque()
        self._bytes = 0
        self._total = 0  # bytes ever appended at this rate: positions are absolute
        self._turn_start: int | None = None  # absolute byte position where the turn's audio begins
        if sample_rate is not None:
            self.set_sample_rate(sample_rate)

    @property
    def params(self) -> SmartTurnParams:
        return self._params

    @property
    def sample_rate(self) -> int | None:
        return self._rate

    def set_sample_rate(self, sample_rate: int) -> None:
        if sample_rate != self._rate:
            self._rate = sample_rate
            self._chunks.clear()
            self._bytes = self._total = 0
            self._turn_start = None

    def append_audio(self, pcm: bytes, is_speech: bool = False) -> None:
        """Cheap on the event loop: append a reference, drop whole chunks past the cap."""
        if self._rate is None or not pcm:
            return
        self._chunks.append(pcm)
        self._bytes += len(pcm)
        self._total += len(pcm)
        cap = self._bytes_for(self._params.max_duration_secs + (self._params.pre_speech_ms / 1000) + 1.0)
        while self._bytes - len(self._chunks[0]) >= cap:
            self._bytes -= len(self._chunks.popleft())

    def speech_started(self) -> None:
        """Marks the turn's start the first time in a turn (later pauses keep it)."""
        if self._turn_start is None and self._rate is not None:
            back = self._bytes_for(self._params.pre_speech_ms / 1000 + self._vad_start_secs)
            self._turn_start = max(0, self._total - back)

    def clear(self) -> None:
        self._turn_start = None

    def turn_audio(self) -> bytes:
        """The turn so far (the last ``max_duration_secs`` of it), at the pipeline rate."""
        start = self._turn_start if self._turn_start is not None else self._total - self._bytes
        start = max(start, self._total - self._bytes, self._total - self._bytes_for(self._params.max_duration_secs))
        data = b"".join(self._chunks)
        return data[len(data) - (self._total - start) :]

    async def analyze_end_of_turn(self, *, silence_secs: float | None = None) -> TurnVerdict:
        if self._rate is None:
            raise RuntimeError("LocalSmartTurnAnalyzerV3: no sample rate yet")
        asked = time.perf_counter()
        runner = self._runner or SmartTurnRunner.shared()
        audio = self.turn_audio()
        if silence_secs is not None and 0 < silence_secs < PAUSE_SILENCE_SECS:
            audio = _pad_silence(audio, self._bytes_for(silence_secs), self._bytes_for(PAUSE_SILENCE_SECS))
        result = await runner.submit(audio, self._rate)
        complete = result.probability > self._params.threshold
        return TurnVerdict(
            state=EndOfTurnState.COMPLETE if complete else EndOfTurnState.INCOMPLETE,
            probability=result.probability,
            inference_ms=result.cpu_ms,
            queued_ms=result.queued_ms,
            e2e_ms=1000 * (time.perf_counter() - asked),
        )

    def _bytes_for(self, secs: float) -> int:
        assert self._rate is not None
        return 2 * int(secs * self._rate)
