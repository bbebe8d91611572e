"""Local fakes of the services a voice bot calls, for offline tests and benchmarks.

``FakeOpenAIServer`` is a real HTTP server on 127.0.0.1 that speaks OpenAI's Chat Completions
(SSE, tool calls), ``/audio/speech`` and ``/audio/transcriptions``, scripted with replies,
latencies and faults, recording every request. See docs/testing-services.md.

The validators (``validate_chat_request`` and friends) need the ``openai`` package and are
imported on first use, so the fake itself works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from phonewire.testing.fakes.cartesia_server import FakeCartesiaServer
from phonewire.testing.fakes.deepgram_script import (
    DropConnection,
    RejectConnect,
    SendError,
    SlowConnect,
    Utterance,
    voiced_ms,
)
from phonewire.testing.fakes.deepgram_server import FakeDeepgramServer, RecordedConnection
from phonewire.testing.fakes.elevenlabs_server import FakeElevenLabsServer
from phonewire.testing.fakes.gemini_server import FakeGeminiLiveServer, GeminiSession
from phonewire.testing.fakes.openai_audio import (
    SyntheticVoice,
    UploadedFile,
    WordSpan,
    parse_multipart,
    speech_duration_ms,
    wav_header,
    word_spans,
)
from phonewire.testing.fakes.openai_script import (
    BadJSON,
    BrokenStream,
    ChatLatency,
    ChatReply,
    ChatStream,
    Fault,
    Hang,
    Slow,
    SpeechLatency,
    StatusFault,
    StreamError,
    TextReply,
    ToolCall,
    ToolCallsReply,
    encode_sse,
    error_body,
    parse_sse,
    split_text,
)
from phonewire.testing.fakes.openai_server import Endpoint, FakeOpenAIServer, RecordedRequest
from phonewire.testing.fakes.realtime_server import FakeRealtimeServer, RecordedSession
from phonewire.testing.fakes.realtime_session import RealtimeFault, RealtimeReply, RealtimeToolCall

if TYPE_CHECKING:
    from phonewire.testing.fakes.openai_validate import (
        OpenAIValidationError,
        validate_chat_request,
        validate_response,
        validate_speech_request,
        validate_transcription_form,
    )

_VALIDATORS = {
    "OpenAIValidationError",
    "validate_chat_request",
    "validate_response",
    "validate_speech_request",
    "validate_transcription_form",
}


def __getattr__(name: str) -> Any:
    if name in _VALIDATORS:
        from phonewire.testing.fakes import openai_validate

        return getattr(openai_validate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DropConnection",
    "FakeCartesiaServer",
    "FakeDeepgramServer",
    "FakeElevenLabsServer",
    "RecordedConnection",
    "RejectConnect",
    "SendError",
    "SlowConnect",
    "Utterance",
    "voiced_ms",
    "BadJSON",
    "BrokenStream",
    "ChatLatency",
    "ChatReply",
    "ChatStream",
    "Endpoint",
    "FakeOpenAIServer",
    "FakeGeminiLiveServer",
    "FakeRealtimeServer",
    "GeminiSession",
    "RealtimeFault",
    "RealtimeReply",
    "RealtimeToolCall",
    "RecordedSession",
    "Fault",
    "Hang",
    "OpenAIValidationError",
    "RecordedRequest",
    "Slow",
    "SpeechLatency",
    "StatusFault",
    "StreamError",
    "SyntheticVoice",
    "TextReply",
    "ToolCall",
    "ToolCallsReply",
    "UploadedFile",
    "WordSpan",
    "encode_sse",
    "error_body",
    "parse_sse",
    "parse_multipart",
    "speech_duration_ms",
    "split_text",
    "validate_chat_request",
    "validate_response",
    "validate_speech_request",
    "validate_transcription_form",
    "wav_header",
    "word_spans",
]
