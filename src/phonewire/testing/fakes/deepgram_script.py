"""The fake Deepgram's brain, sans-I/O: scripted utterances, faults, and one connection's session.

``LiveSession`` is fed what a client sends (audio bytes, control messages) and returns the
messages Deepgram would send back, driven by the *amount of audio received*, never a clock:

* an energy detector marks each 10 ms of audio voiced or silent;
* while an utterance is voiced, an interim goes out every ``interim_every_ms`` of speech;
* after ``endpointing`` ms of silence (the query's value) the final goes out with
  ``speech_final: true``; ``Finalize`` sends it at once with ``from_finalize: true`` (an empty
  final when nothing is pending); ``UtteranceEnd`` follows ``utterance_end_ms`` of silence;
* an ``Utterance(text, speech_ms=N)`` is heard in full only if this connection received N ms
  of its speech: with less, only that share of its words is transcribed - so a client that
  loses audio across a reconnect loses words, as with the real service.

Message shapes follow deepgram-sdk's ``ListenV1Results``/``ListenV1Metadata``/... (the tests
validate every message against them).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from phonewire.audio.g711 import alaw_to_pcm, ulaw_to_pcm

__all__ = [
    "DropConnection",
    "LiveSession",
    "RejectConnect",
    "SendError",
    "SlowConnect",
    "Utterance",
    "voiced_ms",
]

STEP_MS = 10
VOICED_RMS = 300.0  # about -40 dBFS: the espeak caller is far above, line silence far below
MODEL_INFO = {"name": "general-nova-3", "version": "2025-01-01.0", "arch": "nova-3"}


@dataclass(frozen=True, slots=True)
class Utterance:
    """One thing the caller says. ``speech_ms``: voiced audio needed to hear every word."""

    text: str
    speech_ms: float | None = None
    confidence: float = 0.98


@dataclass(frozen=True, slots=True)
class DropConnection:
    """Close the next connection once an utterance has ``after_speech_ms`` of speech.
    ``abrupt``: drop TCP without a close frame (a network failure)."""

    after_speech_ms: float = 500.0
    code: int = 1011
    reason: str = ""
    abrupt: bool = True


@dataclass(frozen=True, slots=True)
class SendError:
    """Send Deepgram's ``Error`` message once ``after_speech_ms`` of speech arrived; ``close``
    then closes the socket with 1011."""

    description: str = "internal error"
    variant: str = "InternalError"
    after_speech_ms: float = 0.0
    close: bool = False


@dataclass(frozen=True, slots=True)
class SlowConnect:
    """Hold the next handshake ``secs`` before answering."""

    secs: float


@dataclass(frozen=True, slots=True)
class RejectConnect:
    """Refuse the next handshakes with an HTTP status and a ``dg-error`` header."""

    status: int = 503
    dg_error: str = "service unavailable"


def pcm_of(data: bytes, encoding: str) -> np.ndarray:
    if encoding == "mulaw":
        data = ulaw_to_pcm(data)
    elif encoding == "alaw":
        data = alaw_to_pcm(data)
    return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")


def voiced_ms(pcm: bytes, sample_rate: int = 8000) -> float:
    """Voiced ms of PCM16 by the fake's detector (to set ``Utterance.speech_ms``)."""
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")
    step = sample_rate * STEP_MS // 1000
    return float(
        sum(STEP_MS for i in range(0, len(samples) - step + 1, step) if _rms(samples[i : i + step]) > VOICED_RMS)
    )


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0


@dataclass
class LiveSession:
    """One connection. ``next_utterance``/``peek_utterance`` read the server's shared script."""

    encoding: str
    sample_rate: int
    interim_results: bool
    endpointing_ms: float | None
    utterance_end_ms: float | None
    vad_events: bool
    peek_utterance: Any
    next_utterance: Any
    faults: list[Any] = field(default_factory=list)
    interim_every_ms: float = 400.0
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    audio_ms: float = 0.0
    action: Any = None  # a DropConnection/SendError(close) the I/O layer must carry out
    _carry: bytes = b""
    _voiced: float = 0.0
    _utt_start: float | None = None
    _voice_end: float = 0.0
    _silence: float = 0.0
    _next_interim: float = 0.0
    _final_end: float = 0.0
    _utt_end_due: bool = False

    @property
    def bytes_per_step(self) -> int:
        width = 1 if self.encoding in ("mulaw", "alaw") else 2
        return self.sample_rate * STEP_MS // 1000 * width

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        data, out = self._carry + data, []
        step = self.bytes_per_step
        whole = len(data) // step * step
        self._carry = data[whole:]
        for i in range(0, whole, step):
            out += self._step(_rms(pcm_of(data[i : i + step], self.encoding)) > VOICED_RMS)
            if self.action is not None:
                break
        return out

    def _step(self, voiced: bool) -> list[dict[str, Any]]:
        t, out = self.audio_ms, []
        self.audio_ms += STEP_MS
        if voiced:
            if self._utt_start is None:
                self._utt_start, self._voiced, self._next_interim = t, 0.0, self.interim_every_ms
                if self.vad_events:
                    out.append({"type": "SpeechStarted", "channel": [0, 1], "timestamp": t / 1000})
            self._voiced += STEP_MS
            self._voice_end, self._silence = self.audio_ms, 0.0
            out += self._faults()
            if self.interim_results and self._voiced >= self._next_interim:
                self._next_interim += self.interim_every_ms
                out.append(self._results(is_final=False))
            return out
        self._silence += STEP_MS
        if self._utt_start is not None and self.endpointing_ms is not None and self._silence >= self.endpointing_ms:
            out.append(self._final(speech_final=True))
        if self._utt_end_due and self.utterance_end_ms is not None and self._silence >= self.utterance_end_ms:
            self._utt_end_due = False
            out.append({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": round(self._voice_end / 1000, 3)})
        return out

    def _faults(self) -> list[dict[str, Any]]:
        for fault in list(self.faults):
            if self._voiced >= fault.after_speech_ms:
                self.faults.remove(fault)
                if isinstance(fault, DropConnection):
                    self.action = fault
                    return []
                self.action = fault if fault.close else None
                return [error_message(fault.variant, fault.description)]
        return []

    def finalize(self) -> list[dict[str, Any]]:
        if self._utt_start is not None:
            return [self._final(from_finalize=True)]
        return [self._empty_final()]

    def close_stream(self) -> list[dict[str, Any]]:
        out = [self._final()] if self._utt_start is not None else []
        return [*out, metadata_message(self.request_id, self.audio_ms / 1000)]

    # --- messages --------------------------------------------------------------------------

    def _words(self, utterance: Utterance, final: bool) -> list[str]:
        words = utterance.text.split()
        if utterance.speech_ms:
            share = min(1.0, self._voiced / utterance.speech_ms)
            count = round(len(words) * share) if final or share < 1 else len(words)
        else:
            count = len(words) if final else min(len(words), int(self._voiced // self.interim_every_ms))
        return words[:count]

    def _results(self, *, is_final: bool, speech_final: bool = False, from_finalize: bool = False) -> dict[str, Any]:
        utterance = self.next_utterance() if is_final else self.peek_utterance()
        words = self._words(utterance, is_final)
        start, end = (self._utt_start or 0.0), max(self._voice_end, (self._utt_start or 0.0) + STEP_MS)
        span = (end - start) / max(1, len(words))
        word_items = [
            {
                "word": w.strip(".,?!").lower(),
                "start": round((start + i * span) / 1000, 3),
                "end": round((start + (i + 1) * span) / 1000, 3),
                "confidence": utterance.confidence,
                "punctuated_word": w,
            }
            for i, w in enumerate(words)
        ]
        begin = self._final_end
        message = results_message(
            " ".join(words),
            word_items,
            utterance.confidence,
            begin / 1000,
            (self.audio_ms - begin) / 1000,
            is_final=is_final,
            speech_final=speech_final,
            from_finalize=from_finalize,
            request_id=self.request_id,
        )
        return message

    def _final(self, *, speech_final: bool = False, from_finalize: bool = False) -> dict[str, Any]:
        message = self._results(is_final=True, speech_final=speech_final, from_finalize=from_finalize)
        self._final_end, self._utt_start, self._utt_end_due = self.audio_ms, None, self.interim_results
        return message

    def _empty_final(self) -> dict[str, Any]:
        begin, self._final_end = self._final_end, self.audio_ms
        return results_message(
            "",
            [],
            0.0,
            begin / 1000,
            (self.audio_ms - begin) / 1000,
            is_final=True,
            speech_final=False,
            from_finalize=True,
            request_id=self.request_id,
        )


def results_message(
    transcript: str,
    words: list[dict[str, Any]],
    confidence: float,
    start: float,
    duration: float,
    *,
    is_final: bool,
    speech_final: bool,
    from_finalize: bool,
    request_id: str,
) -> dict[str, Any]:
    return {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": round(duration, 3),
        "start": round(start, 3),
        "is_final": is_final,
        "speech_final": speech_final,
        "from_finalize": from_finalize,
        "channel": {"alternatives": [{"transcript": transcript, "confidence": confidence, "words": words}]},
        "metadata": {"request_id": request_id, "model_uuid": "00000000-fake-nova-3", "model_info": dict(MODEL_INFO)},
    }


def metadata_message(request_id: str, duration: float) -> dict[str, Any]:
    return {
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": request_id,
        "sha256": "0" * 64,
        "created": "2026-01-01T00:00:00.000Z",
        "duration": round(duration, 3),
        "channels": 1,
    }


def error_message(variant: str, description: str, message: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Error", "variant": variant, "description": description}
    if message is not None:
        out["message"] = message
    return out
