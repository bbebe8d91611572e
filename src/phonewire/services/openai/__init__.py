"""OpenAI and OpenAI-compatible services, on the official ``openai`` SDK (``phonewire[openai]``).

Imported lazily so ``import phonewire.services.openai`` works (for documentation and type
checking) without the extra installed; using a service without it raises a clear error.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["OpenAILLMService", "OpenAIRealtimeLLMService", "OpenAISTTService", "OpenAITTSService"]

_WHERE = {
    "OpenAILLMService": "phonewire.services.openai.llm",
    "OpenAITTSService": "phonewire.services.openai.tts",
    "OpenAISTTService": "phonewire.services.openai.stt",
    "OpenAIRealtimeLLMService": "phonewire.services.openai.realtime",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(_WHERE[name])
    except ModuleNotFoundError as exc:
        if exc.name != "openai":
            raise
        raise ImportError(f"{name} needs the openai SDK: pip install 'phonewire[openai]'") from exc
    return getattr(module, name)
