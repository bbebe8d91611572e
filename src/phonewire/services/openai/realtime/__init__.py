"""OpenAI Realtime (GA) speech to speech: the service, its session config, and the connection
a prewarm hook opens before the call's media stream connects. See docs/services/realtime.md."""

from phonewire.services.openai.realtime.connection import (
    RealtimeConnectError,
    RealtimeConnection,
    open_realtime,
    realtime_url,
)
from phonewire.services.openai.realtime.events import RealtimeSessionConfig
from phonewire.services.openai.realtime.service import OpenAIRealtimeLLMService

__all__ = [
    "OpenAIRealtimeLLMService",
    "RealtimeConnectError",
    "RealtimeConnection",
    "RealtimeSessionConfig",
    "open_realtime",
    "realtime_url",
]
