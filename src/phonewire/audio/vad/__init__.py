"""Voice activity detection: when does the caller start and stop talking?

* :class:`SileroVADAnalyzer` - the default: Silero VAD at 8 or 16 kHz on one shared ONNX session
  (:class:`SileroModel`), optionally batched across calls with :func:`batch_confidences`.
* :class:`EnergyVADAnalyzer` - a model-free fallback for tiny deployments.

Both share :class:`VADAnalyzer`'s per-window state machine and :class:`VADParams`. Importing this
package does not import onnxruntime; the first Silero analyzer (or ``SileroModel.shared()``) does.
See docs/vad.md.
"""

from phonewire.audio.vad.analyzer import VADAnalyzer, VADState, VADTransition
from phonewire.audio.vad.energy import EnergyVADAnalyzer
from phonewire.audio.vad.params import VADParams, dbfs_to_volume, volume_to_dbfs
from phonewire.audio.vad.silero import SileroModel, SileroVADAnalyzer, batch_confidences

__all__ = [
    "EnergyVADAnalyzer",
    "SileroModel",
    "SileroVADAnalyzer",
    "VADAnalyzer",
    "VADParams",
    "VADState",
    "VADTransition",
    "batch_confidences",
    "dbfs_to_volume",
    "volume_to_dbfs",
]
