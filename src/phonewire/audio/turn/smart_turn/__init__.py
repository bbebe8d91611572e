"""Smart Turn v3.2, the local end-of-turn model (BSD-2, vendored in ``data/``)."""

from phonewire.audio.turn.smart_turn.features import smart_turn_features
from phonewire.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3, SmartTurnParams
from phonewire.audio.turn.smart_turn.model import MODEL_SHA256, SmartTurnModel
from phonewire.audio.turn.smart_turn.runner import SmartTurnBusy, SmartTurnRunner

__all__ = [
    "MODEL_SHA256",
    "LocalSmartTurnAnalyzerV3",
    "SmartTurnBusy",
    "SmartTurnModel",
    "SmartTurnParams",
    "SmartTurnRunner",
    "smart_turn_features",
]
