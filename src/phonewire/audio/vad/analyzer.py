"""The VAD state machine shared by every analyzer, evaluated on every window.

Each window of audio gets a speech confidence from the subclass (a model or an energy rule) and a
loudness from its RMS level. A window is *speech* when both pass their thresholds in
:class:`~phonewire.audio.vad.params.VADParams`. The state then moves per window::

                 speech                      start_secs of consecutive speech
      QUIET ─────────────────▶ STARTING ─────────────────────────────────────▶ SPEAKING
        ▲  ◀───────────────────  │                                             │   ▲
        │   one non-speech       │                                 non-speech  │   │ speech
        │   window (a blip)                                                    ▼   │
        └──────────────────────────────────────────────────────────────────── STOPPING
                       stop_secs of consecutive non-speech

Only the two turn boundaries are *reported* (returned from :meth:`VADAnalyzer.analyze` and
:meth:`VADAnalyzer.apply_confidence`): STARTING→SPEAKING ("the caller started talking") and
STOPPING→QUIET ("the caller stopped"). So reports strictly alternate SPEAKING, QUIET, SPEAKING, …;
a blip that falls back to QUIET and a pause that resumes into SPEAKING are visible through
:attr:`VADAnalyzer.state` only. With ``VADParams.early_stop_secs`` set (shorter than
``stop_secs``) one more report is made: STOPPING, at that much silence inside a run ("the caller
may be stopping"), at most once per silence run; a QUIET or more speech follows it. Consumers that
only know the two boundaries must skip it (the transport turns it into ``VADUserStoppingFrame``).

What this fixes in the design it replaces: thresholds are checked after every window rather than
at the end of each buffer (so chunking never changes a decision), the loudness gate needs no
warm-up window and adds no smoothing lag, and the model's state is never reset mid-speech.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum

import numpy as np

from phonewire.audio.vad.params import VADParams, dbfs_to_volume
from phonewire.exceptions import ConfigurationError

__all__ = ["VOLUME_RELEASE_DB_PER_SEC", "VADAnalyzer", "VADState", "VADTransition"]

VOLUME_RELEASE_DB_PER_SEC = 20.0
"""How fast the tracked level may fall. Rising is instant (no onset lag); falling slowly keeps the
gate open across the quiet consonants and closures inside words (10-150 ms, 20-30 dB down)."""

_SILENT_DBFS = -120.0  # the level of an all-zero window (below any 16-bit signal)
_INT16_SCALE = np.float32(1.0 / 32768.0)


class VADState(Enum):
    """Where the analyzer is in a speech run (values match Pipecat's for log familiarity)."""

    QUIET = 1
    STARTING = 2
    SPEAKING = 3
    STOPPING = 4


@dataclass(frozen=True, slots=True)
class VADTransition:
    """A turn boundary found by the analyzer.

    Attributes:
        state: the new state, SPEAKING (a turn began) or QUIET (it ended); STOPPING for the early
            stop report (``early_stop_secs`` of silence so far), if enabled.
        previous: the state before the window that caused it.
        stream_time: seconds of audio fed so far, at the end of that window.
        speech_start_time: stream time at which the speech run began (the start of its first
            speech window). ``stream_time - speech_start_time`` on a SPEAKING transition is the
            detection delay; on a QUIET transition it spans the whole turn plus ``stop_secs``.
    """

    state: VADState
    previous: VADState
    stream_time: float
    speech_start_time: float | None


class VADAnalyzer(ABC):
    """Turns a stream of 16-bit mono PCM into turn boundaries, one fixed-size window at a time.

    One analyzer per call stream; it is cheap (the model, if any, is shared) and not thread-safe.
    :meth:`analyze` is the simple entry point. A batcher that runs one model inference for many
    calls drives the same steps itself: :meth:`pending_windows`, :meth:`take_window`, a batched
    confidence, then :meth:`apply_confidence` — the decisions are identical.
    """

    _run_peak_dbfs: float  # the loudest speech window of the current run (stop_drop_db)

    def __init__(self, *, sample_rate: int | None = None, params: VADParams | None = None) -> None:
        self._params = params if params is not None else VADParams()
        _check_params(self._params)
        self._sample_rate: int | None = None
        self._pending = bytearray()
        self._clock_base = 0.0  # seconds fed at earlier sample rates
        self._clock_samples = 0  # samples fed at the current rate, in whole windows or dropped
        self._start_windows = 1
        self._stop_windows = 1
        self._early_windows = 0  # silence windows of the early stop report (0: off)
        self._clear_decision_state()
        if sample_rate is not None:
            self.set_sample_rate(sample_rate)

    # -- configuration --------------------------------------------------------------------------

    @property
    def params(self) -> VADParams:
        return self._params

    @property
    def sample_rate(self) -> int | None:
        """The input rate, or None until :meth:`set_sample_rate` is called."""
        return self._sample_rate

    @property
    @abstractmethod
    def window_samples(self) -> int:
        """Samples per analysis window at the current rate (RuntimeError if no rate is set)."""

    @property
    def window_secs(self) -> float:
        return self.window_samples / self._require_rate()

    def set_sample_rate(self, sample_rate: int) -> None:
        """Set the input rate. A different rate resets the analyzer (leftover samples are dropped).

        Raises:
            ValueError: (a ConfigurationError) if this analyzer cannot handle the rate.
        """
        self._check_sample_rate(sample_rate)
        if sample_rate == self._sample_rate:
            return
        self._drop_pending()
        self._clock_base = self.stream_time
        self._clock_samples = 0
        self._sample_rate = sample_rate
        self._update_window_counts()
        self.reset()

    def set_params(self, params: VADParams) -> None:
        """Use new thresholds from the next window on. The state is kept, so a turn in progress
        is neither lost nor reported twice."""
        _check_params(params)
        self._params = params
        self._update_window_counts()

    # -- state ----------------------------------------------------------------------------------

    @property
    def state(self) -> VADState:
        return self._state

    @property
    def stream_time(self) -> float:
        """Seconds of audio consumed so far: analysed windows plus samples dropped by reset()."""
        if self._sample_rate is None:
            return self._clock_base
        return self._clock_base + self._clock_samples / self._sample_rate

    @property
    def volume(self) -> float:
        """The tracked loudness on the ``min_volume`` scale (0..1), for meters and debugging."""
        return dbfs_to_volume(self._level_dbfs)

    def reset(self) -> None:
        """Return to QUIET with a fresh model state, as at the start of a call.

        Call it after forcing a turn to end (for example when audio stopped arriving), so the next
        speech is debounced by ``start_secs`` again. Samples not yet analysed are dropped but
        still counted in :attr:`stream_time`, which keeps following the stream.
        """
        self._drop_pending()
        self._clear_decision_state()
        self._reset_model()

    # -- the pipeline: analyze == take_window -> voice_confidence -> apply_confidence ------------

    def analyze(self, pcm: bytes | bytearray | memoryview) -> list[VADTransition]:
        """Analyse s16le mono PCM of any length (odd byte counts too); keep the remainder.

        Returns:
            The turn boundaries found, in order (see the module docstring).
        Raises:
            RuntimeError: if no sample rate has been set.
        """
        self._require_rate()
        self._pending += pcm
        transitions = []
        while self.pending_windows():
            window = self.take_window()
            transition = self.apply_confidence(self.voice_confidence(window), window)
            if transition is not None:
                transitions.append(transition)
        return transitions

    def feed(self, pcm: bytes | bytearray | memoryview) -> None:
        """Buffer audio without analysing it (for a batcher); analyze() is feed() plus processing."""
        self._require_rate()
        self._pending += pcm

    def pending_windows(self) -> int:
        """How many full windows are buffered and waiting for :meth:`take_window`."""
        if self._sample_rate is None:
            return 0
        return len(self._pending) // (2 * self.window_samples)

    def take_window(self) -> np.ndarray:
        """Remove the next full window from the buffer, as float32 in [-1, 1).

        Raises:
            RuntimeError: if no full window is buffered (check :meth:`pending_windows`).
        """
        if not self.pending_windows():
            raise RuntimeError("no full window is buffered; check pending_windows() first")
        size = 2 * self.window_samples
        chunk = bytes(self._pending[:size])
        del self._pending[:size]
        return np.frombuffer(chunk, dtype="<i2").astype(np.float32) * _INT16_SCALE

    def apply_confidence(self, confidence: float, window: np.ndarray) -> VADTransition | None:
        """Advance the state machine by one window given its speech confidence.

        ``window`` must be the array :meth:`take_window` returned; its loudness feeds the
        ``min_volume`` gate and its length the stream clock. Windows must be applied in order.

        Returns:
            The turn boundary this window caused, if any.
        """
        if window.shape != (self.window_samples,):
            raise ValueError(f"expected a window of {self.window_samples} samples, got shape {window.shape}")
        self._clock_samples += window.shape[0]
        instant = _rms_dbfs(window)
        loud = dbfs_to_volume(self._track_level(window, instant)) >= self._params.min_volume
        speech = bool(confidence >= self._params.confidence) and loud
        if speech and self._params.stop_drop_db and self._state in (VADState.SPEAKING, VADState.STOPPING):
            # Inside a run only (onsets untouched): far below the run's loudest window is silence.
            speech = instant >= self._run_peak_dbfs - self._params.stop_drop_db
        if speech:
            self._run_peak_dbfs = max(self._run_peak_dbfs, instant)
        transition = self._step(speech)
        if self._state is VADState.QUIET:
            self._run_peak_dbfs = _SILENT_DBFS
        self._on_window_done()
        return transition

    @abstractmethod
    def voice_confidence(self, window: np.ndarray) -> float:
        """Probability (0..1) that the window holds speech. May advance internal model state, so
        it must be called exactly once per window, in stream order."""

    # -- hooks for subclasses -------------------------------------------------------------------

    def _check_sample_rate(self, sample_rate: int) -> None:
        """Raise ConfigurationError for a rate this analyzer cannot use (base: any positive int)."""
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ConfigurationError(
                f"{type(self).__name__}: sample_rate must be a positive integer in Hz, got {sample_rate!r}"
            )

    def _reset_model(self) -> None:  # noqa: B027 - an optional hook, empty on purpose
        """Clear whatever the confidence source remembers about the stream."""

    def _on_window_done(self) -> None:  # noqa: B027 - an optional hook, empty on purpose
        """Called after each window's decision (the Silero analyzer resets its model in long QUIET)."""

    @property
    def _quiet_windows(self) -> int:
        """Consecutive windows that ended in QUIET, the place where state may be safely cleared."""
        return self._quiet_run

    # -- internals ------------------------------------------------------------------------------

    def _require_rate(self) -> int:
        if self._sample_rate is None:
            raise RuntimeError(f"{type(self).__name__}: call set_sample_rate() before feeding audio")
        return self._sample_rate

    def _drop_pending(self) -> None:
        self._clock_samples += len(self._pending) // 2
        self._pending.clear()

    def _clear_decision_state(self) -> None:
        self._state = VADState.QUIET
        self._speech_run = 0
        self._silence_run = 0
        self._quiet_run = 0
        self._onset: float | None = None
        self._level_dbfs = _SILENT_DBFS
        self._run_peak_dbfs = _SILENT_DBFS  # the loudest speech window of the current run

    def _update_window_counts(self) -> None:
        if self._sample_rate is None:
            return
        self._start_windows = _windows_for(self._params.start_secs, self.window_secs)
        self._stop_windows = _windows_for(self._params.stop_secs, self.window_secs)
        early = self._params.early_stop_secs
        self._early_windows = _windows_for(early, self.window_secs) if early > 0 else 0

    def _track_level(self, window: np.ndarray, instant: float | None = None) -> float:
        """Instant-attack, slow-release RMS level in dBFS (see VOLUME_RELEASE_DB_PER_SEC)."""
        released = self._level_dbfs - VOLUME_RELEASE_DB_PER_SEC * self.window_secs
        self._level_dbfs = max(_rms_dbfs(window) if instant is None else instant, released)
        return self._level_dbfs

    def _step(self, speech: bool) -> VADTransition | None:
        """Move the state machine by one window; return a report on a turn boundary."""
        if speech:
            self._speech_run += 1
            self._silence_run = 0
        else:
            self._silence_run += 1
            self._speech_run = 0
        previous = self._state
        if speech and previous is VADState.QUIET:
            self._onset = self._window_start_time()
        self._state = self._next_state(previous, speech)
        self._quiet_run = self._quiet_run + 1 if self._state is VADState.QUIET else 0
        return self._report(previous)

    def _next_state(self, state: VADState, speech: bool) -> VADState:
        if speech:
            if state is VADState.QUIET or state is VADState.STARTING:
                enough = self._speech_run >= self._start_windows
                return VADState.SPEAKING if enough else VADState.STARTING
            return VADState.SPEAKING
        if state is VADState.SPEAKING or state is VADState.STOPPING:
            return VADState.QUIET if self._silence_run >= self._stop_windows else VADState.STOPPING
        return VADState.QUIET

    def _report(self, previous: VADState) -> VADTransition | None:
        state = self._state
        began = state is VADState.SPEAKING and previous in (VADState.QUIET, VADState.STARTING)
        ended = state is VADState.QUIET and previous in (VADState.SPEAKING, VADState.STOPPING)
        onset = self._onset
        if state is VADState.QUIET:
            self._onset = None
        if not (began or ended):
            if state is VADState.STOPPING and self._silence_run == self._early_windows:
                return VADTransition(state, previous, self.stream_time, onset)  # the early stop report
            return None
        return VADTransition(state, previous, self.stream_time, onset)

    def _window_start_time(self) -> float:
        rate = self._require_rate()
        return self._clock_base + (self._clock_samples - self.window_samples) / rate


def _windows_for(secs: float, window_secs: float) -> int:
    """Whole windows closest to ``secs`` (at least one: a decision needs a window)."""
    return max(1, round(secs / window_secs))


def _rms_dbfs(window: np.ndarray) -> float:
    if window.size == 0:
        return _SILENT_DBFS
    mean_square = float(np.dot(window, window)) / window.size
    if mean_square <= 0.0 or not math.isfinite(mean_square):
        return _SILENT_DBFS
    return max(_SILENT_DBFS, 10.0 * math.log10(mean_square))


def _check_params(params: VADParams) -> None:
    if not isinstance(params, VADParams):
        raise ConfigurationError(f"params must be a VADParams, got {type(params).__name__}")
