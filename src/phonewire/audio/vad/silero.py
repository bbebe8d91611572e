"""Silero VAD on one process-wide ONNX Runtime session, with per-call state only.

The Silero graph is stateless from ONNX Runtime's point of view: the recurrent state
(``[2, batch, 128]``) and the audio context prepended to each window (32 samples at 8 kHz, 64 at
16 kHz) are inputs and outputs. So one session serves every call in the process, concurrently and
batched, and a call costs two small arrays (1.2 KB) instead of a ~10 MB session built in ~50 ms on
the event loop. The session uses one intra-op and one inter-op thread: the model is too small to
gain from parallelism, and ORT's default pool spin-waits a whole core per process.

The model file is the unmodified ``silero_vad.onnx`` from the silero-vad 6.2.3 wheel (MIT); see
``data/README.md`` for its provenance and checksum.

ONNX Runtime's telemetry is turned off (``ORT_DISABLE_TELEMETRY=1``) before onnxruntime is
imported: the security review saw it try a telemetry host when the model loaded, which
``disable_telemetry_events()`` did not stop and the variable did. phonewire makes no outbound
connection the operator did not configure (issue 11, finding 9). An operator's own value of the
variable is kept.
"""

from __future__ import annotations

import importlib.resources
import os
import threading
from collections.abc import Sequence
from contextlib import suppress
from types import ModuleType
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from phonewire.audio.vad.analyzer import VADAnalyzer
from phonewire.audio.vad.params import VADParams
from phonewire.exceptions import ConfigurationError

if TYPE_CHECKING:
    import onnxruntime

#: Read by onnxruntime when it starts; set on import of this module so it precedes onnxruntime's.
TELEMETRY_ENV = "ORT_DISABLE_TELEMETRY"
os.environ.setdefault(TELEMETRY_ENV, "1")

__all__ = [
    "MODEL_RESET_QUIET_SECS",
    "MODEL_SHA256",
    "SUPPORTED_SAMPLE_RATES",
    "SileroModel",
    "SileroVADAnalyzer",
    "batch_confidences",
]

MODEL_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"
"""sha256 of the shipped ``data/silero_vad.onnx``."""

MODEL_RESET_QUIET_SECS = 5.0
"""The model state is cleared after each this-many seconds of uninterrupted QUIET, never during
speech. Silero's own streaming iterator only resets between files; clearing during long silences
keeps a call that lasts hours behaving like a fresh one without ever touching an utterance."""

# sample rate -> (new samples per window, context samples prepended from the previous window)
_WINDOW_AND_CONTEXT = {8000: (256, 32), 16000: (512, 64)}
SUPPORTED_SAMPLE_RATES = tuple(_WINDOW_AND_CONTEXT)
_STATE_UNITS = 128
_MODEL_RESOURCE = ("data", "silero_vad.onnx")


class SileroModel:
    """An ONNX Runtime session for ``silero_vad.onnx``; stateless, so safe to share across calls
    and threads (``InferenceSession.run`` is thread-safe).

    Use :meth:`shared` everywhere; build your own instance only to compare or isolate. Calling
    ``SileroModel.shared()`` once at application start moves the ~60 ms load off the first call.
    """

    _shared_instance: ClassVar[SileroModel | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model: bytes | str | os.PathLike[str] | None = None) -> None:
        """Load the model: the shipped file by default, or ONNX bytes / a path for another one."""
        os.environ.setdefault(TELEMETRY_ENV, "1")  # again, in case something removed it since
        import onnxruntime  # deferred: energy-only deployments never pay its ~200 ms import

        with suppress(Exception):  # absent from some builds
            onnxruntime.disable_telemetry_events()  # belt and braces; the variable is what works

        source = _shipped_model_bytes() if model is None else model
        if isinstance(source, os.PathLike):
            source = os.fspath(source)
        self._session = onnxruntime.InferenceSession(
            source, sess_options=_session_options(onnxruntime), providers=["CPUExecutionProvider"]
        )
        self._rates = {rate: np.array(rate, dtype=np.int64) for rate in SUPPORTED_SAMPLE_RATES}

    @classmethod
    def shared(cls) -> SileroModel:
        """The process-wide instance, created on first use (thread-safe, created exactly once)."""
        instance = cls._shared_instance
        if instance is None:
            with cls._shared_lock:
                instance = cls._shared_instance
                if instance is None:
                    instance = cls._shared_instance = cls()
        return instance

    @property
    def session(self) -> onnxruntime.InferenceSession:
        return self._session

    def infer(self, windows: np.ndarray, states: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """Run one batch: N streams, one window each.

        Args:
            windows: float32 ``[N, context + window]`` (288 at 8 kHz, 576 at 16 kHz).
            states: float32 ``[2, N, 128]``, each stream's state from its previous window.
            sample_rate: 8000 or 16000, the same for the whole batch.
        Returns:
            ``(probabilities [N], new states [2, N, 128])``.
        """
        _check_batch(windows, states, sample_rate)
        feed = {"input": windows, "state": states, "sr": self._rates[sample_rate]}
        probs, new_states = self._session.run(None, feed)
        return probs.reshape(-1), new_states


class SileroVADAnalyzer(VADAnalyzer):
    """Silero VAD for one call at 8 kHz (256-sample windows) or 16 kHz (512), both 32 ms.

    Holds only the call's recurrent state and audio context; inference goes through ``model``
    (the shared one by default). 8 kHz is the native telephony rate: do not upsample for it.
    """

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        params: VADParams | None = None,
        model: SileroModel | None = None,
    ) -> None:
        self._model = model if model is not None else SileroModel.shared()
        self._model_state = _zero_state(1)
        self._context = np.zeros(0, dtype=np.float32)
        self._reset_every = 1
        super().__init__(sample_rate=sample_rate, params=params)

    @property
    def model(self) -> SileroModel:
        return self._model

    @property
    def window_samples(self) -> int:
        return _WINDOW_AND_CONTEXT[self._require_rate()][0]

    @property
    def context_samples(self) -> int:
        return _WINDOW_AND_CONTEXT[self._require_rate()][1]

    def voice_confidence(self, window: np.ndarray) -> float:
        probs, states = self._model.infer(self._model_input(window)[np.newaxis], self._model_state, self._rate)
        self._commit(window, states)
        return float(probs[0])

    @property
    def _rate(self) -> int:
        return self._require_rate()

    def _check_sample_rate(self, sample_rate: int) -> None:
        super()._check_sample_rate(sample_rate)
        if sample_rate not in _WINDOW_AND_CONTEXT:
            raise ConfigurationError(
                f"SileroVADAnalyzer supports 8000 and 16000 Hz, got {sample_rate} Hz; resample to "
                "8000 Hz (telephony) or 16000 Hz first, or use EnergyVADAnalyzer"
            )

    def _reset_model(self) -> None:
        self._model_state = _zero_state(1)
        self._context = np.zeros(self.context_samples if self._sample_rate else 0, dtype=np.float32)
        if self._sample_rate:
            self._reset_every = max(1, round(MODEL_RESET_QUIET_SECS / self.window_secs))

    def _on_window_done(self) -> None:
        """Clear the recurrent state at a silence boundary: every MODEL_RESET_QUIET_SECS of QUIET."""
        quiet = self._quiet_windows
        if quiet and quiet % self._reset_every == 0:
            self._model_state = _zero_state(1)

    def _model_input(self, window: np.ndarray) -> np.ndarray:
        """The context from the previous window followed by this one, as the model expects."""
        if window.shape != (self.window_samples,):
            raise ValueError(f"expected a window of {self.window_samples} samples, got shape {window.shape}")
        return np.concatenate((self._context, window.astype(np.float32, copy=False)))

    def _commit(self, window: np.ndarray, state: np.ndarray) -> None:
        self._model_state = state
        self._context = np.array(window[-self.context_samples :], dtype=np.float32)


def batch_confidences(analyzers: Sequence[SileroVADAnalyzer], windows: Sequence[np.ndarray]) -> list[float]:
    """Speech confidences for one window of each of many calls, in one inference per
    (model, sample rate) group; ~2.8x less CPU per window than separate runs at 50+ calls.

    Each ``windows[i]`` must come from ``analyzers[i].take_window()``; pass each result on to
    ``analyzers[i].apply_confidence``. The results equal calling ``voice_confidence`` one by one.

    Raises:
        ValueError: on length mismatch or if an analyzer appears twice (its windows are sequential,
            so they cannot share a batch).
    """
    if len(analyzers) != len(windows):
        raise ValueError(f"{len(analyzers)} analyzers but {len(windows)} windows")
    if len({id(a) for a in analyzers}) != len(analyzers):
        raise ValueError("an analyzer appears twice in one batch; feed its next window in the next batch")
    confidences = [0.0] * len(analyzers)
    for group in _group_by_model_and_rate(analyzers).values():
        _infer_group([analyzers[i] for i in group], [windows[i] for i in group], group, confidences)
    return confidences


def _group_by_model_and_rate(analyzers: Sequence[SileroVADAnalyzer]) -> dict[tuple[int, int], list[int]]:
    groups: dict[tuple[int, int], list[int]] = {}
    for index, analyzer in enumerate(analyzers):
        groups.setdefault((id(analyzer.model), analyzer._rate), []).append(index)
    return groups


def _infer_group(
    analyzers: list[SileroVADAnalyzer], windows: list[np.ndarray], slots: list[int], out: list[float]
) -> None:
    inputs = np.stack([a._model_input(w) for a, w in zip(analyzers, windows, strict=True)])
    states = np.concatenate([a._model_state for a in analyzers], axis=1)
    probs, new_states = analyzers[0].model.infer(inputs, states, analyzers[0]._rate)
    for column, (analyzer, window, slot) in enumerate(zip(analyzers, windows, slots, strict=True)):
        analyzer._commit(window, new_states[:, column : column + 1, :].copy())
        out[slot] = float(probs[column])


def _zero_state(batch: int) -> np.ndarray:
    return np.zeros((2, batch, _STATE_UNITS), dtype=np.float32)


def _session_options(ort: ModuleType) -> onnxruntime.SessionOptions:
    """One thread, sequential: ORT's default pool spin-waits ~1 core per process for no gain."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


def _shipped_model_bytes() -> bytes:
    """Read the model through importlib.resources, so it also loads from a zipped install."""
    resource = importlib.resources.files(__package__ or "phonewire.audio.vad")
    for part in _MODEL_RESOURCE:
        resource = resource.joinpath(part)
    return resource.read_bytes()


def _check_batch(windows: np.ndarray, states: np.ndarray, sample_rate: int) -> None:
    if sample_rate not in _WINDOW_AND_CONTEXT:
        raise ConfigurationError(f"Silero supports 8000 and 16000 Hz, got {sample_rate!r}")
    window, context = _WINDOW_AND_CONTEXT[sample_rate]
    if windows.dtype != np.float32 or windows.ndim != 2 or windows.shape[1] != window + context:
        raise ValueError(
            f"windows must be float32 [N, {window + context}] at {sample_rate} Hz, "
            f"got {windows.dtype} {list(windows.shape)}"
        )
    expected = (2, windows.shape[0], _STATE_UNITS)
    if states.dtype != np.float32 or states.shape != expected:
        raise ValueError(f"states must be float32 {list(expected)}, got {states.dtype} {list(states.shape)}")
