"""OpenAI Realtime (GA) events, sans-I/O: client events built as JSON text, server events parsed.

Why a module of its own: the wire format is the contract with the API and with the fake, and
both are tested against the official SDK's types (``openai.types.realtime``). Nothing here does
I/O, sleeps or raises into the caller's loop: ``parse_server_event`` turns any text into a
``ServerEvent`` or a ``BadEvent`` (logged and counted by the service, never fatal).

The audio payload of ``input_audio_buffer.append`` is spliced into a prebuilt string: it is the
one event sent 50 times a second per call, so it skips ``json.dumps``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "AUDIO_FORMATS",
    "BENIGN_ERRORS",
    "BadEvent",
    "RealtimeSessionConfig",
    "ServerEvent",
    "audio_append",
    "audio_ms",
    "client_event",
    "conversation_item_create",
    "function_call_output",
    "input_audio_clear",
    "input_audio_commit",
    "message_item",
    "parse_server_event",
    "response_cancel",
    "response_create",
    "session_update",
    "truncate",
]

AudioFormat = Literal["pcmu", "pcma", "pcm"]
#: GA ``audio.*.format`` objects; PCM is 24 kHz only.
AUDIO_FORMATS: dict[str, dict[str, Any]] = {
    "pcmu": {"type": "audio/pcmu"},
    "pcma": {"type": "audio/pcma"},
    "pcm": {"type": "audio/pcm", "rate": 24000},
}
#: Bytes per millisecond of audio in each format (G.711: 8 kHz, 1 byte; PCM16 at 24 kHz: 48).
BYTES_PER_MS = {"pcmu": 8, "pcma": 8, "pcm": 48}
#: Errors the API sends for races that are nobody's fault (a cancel after the response ended,
#: a create while one runs): logged, never a failure of the call.
BENIGN_ERRORS = frozenset(
    {"response_cancel_not_active", "conversation_already_has_active_response", "item_truncate_invalid_item_id"}
)
_ids = itertools.count(1)


def _event_id() -> str:
    return f"pw_{next(_ids)}"


def audio_ms(nbytes: int, fmt: str) -> float:
    """Duration of ``nbytes`` of audio in ``fmt`` (μ-law: bytes/8 ms; PCM 24 kHz: bytes/48 ms)."""
    return nbytes / BYTES_PER_MS[fmt]


@dataclass(slots=True, kw_only=True)
class RealtimeSessionConfig:
    """What ``session.update`` says. ``turn_detection``: "server_vad", "semantic_vad", a full
    GA object, or None (phonewire's own VAD commits turns). ``tools`` are flat GA function
    tools; Chat Completions-shaped tools (``{"type":"function","function":{...}}``) are
    flattened."""

    model: str = "gpt-realtime"
    instructions: str | None = None
    voice: str | None = "marin"
    input_format: AudioFormat = "pcmu"
    output_format: AudioFormat = "pcmu"
    turn_detection: str | dict[str, Any] | None = "server_vad"
    transcription_model: str | None = "gpt-4o-mini-transcribe"
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | None = "auto"
    max_output_tokens: int | Literal["inf"] | None = None
    noise_reduction: str | None = None

    def session(self) -> dict[str, Any]:
        audio_in: dict[str, Any] = {"format": AUDIO_FORMATS[self.input_format], "turn_detection": _turn(self)}
        if self.transcription_model:
            audio_in["transcription"] = {"model": self.transcription_model}
        if self.noise_reduction:
            audio_in["noise_reduction"] = {"type": self.noise_reduction}
        audio_out: dict[str, Any] = {"format": AUDIO_FORMATS[self.output_format]}
        if self.voice:
            audio_out["voice"] = self.voice
        session: dict[str, Any] = {
            "type": "realtime",
            "model": self.model,
            "output_modalities": ["audio"],
            "audio": {"input": audio_in, "output": audio_out},
        }
        if self.instructions is not None:
            session["instructions"] = self.instructions
        if self.tools:
            session["tools"] = [flat_tool(t) for t in self.tools]
            if self.tool_choice:
                session["tool_choice"] = self.tool_choice
        if self.max_output_tokens is not None:
            session["max_output_tokens"] = self.max_output_tokens
        return session


def _turn(config: RealtimeSessionConfig) -> dict[str, Any] | None:
    td = config.turn_detection
    if td is None or isinstance(td, dict):
        return td
    if td not in ("server_vad", "semantic_vad"):
        raise ValueError(f"turn_detection must be 'server_vad', 'semantic_vad', a dict or None, not {td!r}")
    return {"type": td, "create_response": True, "interrupt_response": True}


def flat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """A GA function tool from either shape (Realtime's flat one, or Chat Completions')."""
    fn = tool.get("function") if isinstance(tool.get("function"), dict) else None
    if fn is None:
        return tool
    flat = {"type": "function", "name": fn["name"]}
    for key in ("description", "parameters"):
        if key in fn:
            flat[key] = fn[key]
    return flat


# --- client events --------------------------------------------------------------------


def client_event(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "event_id": _event_id(), **fields}, separators=(",", ":"))


def session_update(config: RealtimeSessionConfig) -> str:
    return client_event("session.update", session=config.session())


_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'


def audio_append(audio: bytes) -> str:
    """The per-packet event: base64 spliced into a constant prefix (no json.dumps)."""
    return _APPEND_HEAD + base64.b64encode(audio).decode("ascii") + '"}'


def input_audio_commit() -> str:
    return client_event("input_audio_buffer.commit")


def input_audio_clear() -> str:
    return client_event("input_audio_buffer.clear")


def response_create() -> str:
    return client_event("response.create")


def response_cancel(response_id: str | None = None) -> str:
    return client_event("response.cancel", **({"response_id": response_id} if response_id else {}))


def truncate(item_id: str, audio_end_ms: int) -> str:
    """``conversation.item.truncate``; ``audio_end_ms`` must be a non-negative whole number
    not beyond the item's audio (the caller clamps; see ``service.truncate_point``)."""
    if not isinstance(audio_end_ms, int) or audio_end_ms < 0:
        raise ValueError(f"audio_end_ms must be a non-negative int, not {audio_end_ms!r}")
    return client_event("conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=audio_end_ms)


def conversation_item_create(item: dict[str, Any]) -> str:
    return client_event("conversation.item.create", item=item)


def function_call_output(call_id: str, output: Any) -> str:
    text = output if isinstance(output, str) else json.dumps(output)
    return conversation_item_create({"type": "function_call_output", "call_id": call_id, "output": text})


def message_item(role: str, text: str) -> dict[str, Any]:
    """A text message item (context replayed into a fresh session after a reconnect)."""
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


# --- server events --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """One parsed server event: ``type`` and the whole decoded object (fields by name)."""

    type: str
    data: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def str_field(self, key: str) -> str | None:
        value = self.data.get(key)
        return value if isinstance(value, str) else None

    def audio(self) -> bytes | None:
        """The decoded ``delta`` of an audio delta event (None if absent or not base64)."""
        delta = self.data.get("delta")
        if not isinstance(delta, str):
            return None
        try:
            return base64.b64decode(delta, validate=True)
        except (binascii.Error, ValueError):
            return None

    def error_code(self) -> str | None:
        err = self.data.get("error")
        if not isinstance(err, dict):
            return None
        code = err.get("code") or err.get("type")
        return code if isinstance(code, str) else None

    def error_message(self) -> str:
        err = self.data.get("error")
        message = err.get("message") if isinstance(err, dict) else None
        return message[:300] if isinstance(message, str) else ""


@dataclass(frozen=True, slots=True)
class BadEvent:
    """Text that is not a server event; ``reason`` says why (logged and counted)."""

    reason: str


def parse_server_event(text: str | bytes) -> ServerEvent | BadEvent:
    """Never raises: a JSON object with a string ``type``, or a ``BadEvent``."""
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return BadEvent("not JSON")
    if not isinstance(obj, dict):
        return BadEvent("not a JSON object")
    kind = obj.get("type")
    if not isinstance(kind, str) or not kind:
        return BadEvent("no type")
    return ServerEvent(kind, obj)
