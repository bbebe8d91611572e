"""One fake OpenAI Realtime session, sans-I/O: client events in, server events out.

The server thread (``realtime_server.py``) feeds it each client event and the clock; it answers
with the events the GA API would send (shapes checked against ``openai.types.realtime`` in the
fake's tests). What it models, because phonewire's behaviour depends on it:

* ``session.update`` merged into the session (a beta-shaped update is refused, as GA does);
* a toy energy VAD over appended audio in the session's input format: ``speech_started`` /
  ``speech_stopped`` / ``committed`` with ``audio_*_ms`` from the byte count, and with
  ``interrupt_response`` the running response cancelled (reason ``turn_detected``);
* replies as synthetic speech (``SyntheticVoice``) in the output format, streamed by the server
  at a controllable rate; function calls; input transcripts;
* ``conversation.item.truncate`` validated like the API: a whole, non-negative number of ms not
  beyond the item's audio, else the API's error ("Audio content of X ms is already shorter...").
"""

from __future__ import annotations

import base64
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from phonewire.audio.g711 import alaw_to_pcm, pcm_to_alaw, pcm_to_ulaw, ulaw_to_pcm
from phonewire.testing.fakes.openai_audio import SyntheticVoice

__all__ = ["RealtimeFault", "RealtimeReply", "RealtimeSessionState", "RealtimeToolCall"]

NextReply = Callable[[], Any]
_BPMS = {"audio/pcmu": 8, "audio/pcma": 8, "audio/pcm": 48}
_BETA_KEYS = {"input_audio_format", "output_audio_format", "modalities", "turn_detection", "voice"}
SPEECH_RMS = 500.0  # int16 RMS above which a chunk counts as speech


@dataclass(frozen=True, slots=True)
class RealtimeToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RealtimeReply:
    """What the model says next (audio + transcript), or the tools it calls instead."""

    text: str = ""
    tool_calls: tuple[RealtimeToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class RealtimeFault:
    """A response that goes wrong: "drop" closes the socket after ``after_chunks`` audio chunks
    (code 1011), "error" answers with an ``error`` event (``server_error``) and a failed
    ``response.done``, "stall" sends nothing more, "expire" ends the session as the 60-minute
    limit does (``session_expired`` error, close 1001)."""

    kind: str
    after_chunks: int = 0
    text: str = "This reply is cut off by a fault in the fake."


@dataclass(slots=True)
class Response:
    id: str
    item_id: str
    chunks: list[bytes]
    transcript: list[str]
    reply: Any  # RealtimeReply, or a RealtimeFault the server acts out
    sent: int = 0
    status: str = "in_progress"


@dataclass
class RealtimeSessionState:
    """Everything a session knows; ``handle`` returns the events to send for one client event."""

    transcripts: list[str] = field(default_factory=list)
    voice: SyntheticVoice = field(default_factory=SyntheticVoice)
    chunk_ms: int = 100
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    session: dict[str, Any] = field(default_factory=dict)
    items: dict[str, float] = field(default_factory=dict)  # assistant item id -> audio ms
    item_log: list[dict[str, Any]] = field(default_factory=list)  # client-created items
    truncates: list[dict[str, Any]] = field(default_factory=list)
    response: Response | None = None
    appended_bytes: int = 0
    speaking: bool = False
    speech_ms: float = 0.0
    silence_ms: float = 0.0
    speech_start_ms: float = 0.0
    user_item: str | None = None

    def __post_init__(self) -> None:
        self.session = {
            "type": "realtime",
            "model": "gpt-realtime",
            "output_modalities": ["audio"],
            "instructions": "",
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                       "silence_duration_ms": 500, "create_response": True,
                                       "interrupt_response": True, "idle_timeout_ms": None},
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1.0},
            },
        }  # fmt: skip

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.ids):04d}"

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "event_id": self.new_id("event"), **fields}

    @property
    def in_format(self) -> str:
        return str(self.session["audio"]["input"]["format"]["type"])

    @property
    def out_format(self) -> str:
        return str(self.session["audio"]["output"]["format"]["type"])

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        td = self.session["audio"]["input"].get("turn_detection")
        return td if isinstance(td, dict) else None

    def created(self) -> list[dict[str, Any]]:
        return [self.event("session.created", session=self.session)]

    # --- client events -----------------------------------------------------------------

    def handle(self, obj: dict[str, Any], reply: NextReply) -> list[dict[str, Any]]:
        """``reply()``: what to say if this event starts a response (the server's script)."""
        kind = obj.get("type")
        if kind == "session.update":
            return self._update(obj)
        if kind == "input_audio_buffer.append":
            return self._append(obj, reply)
        if kind == "input_audio_buffer.commit":
            return self._commit()
        if kind == "input_audio_buffer.clear":
            return [self.event("input_audio_buffer.cleared")]
        if kind == "conversation.item.create":
            self.item_log.append(obj.get("item") or {})
            item = {"id": self.new_id("item"), "object": "realtime.item", **(obj.get("item") or {})}
            return [self.event("conversation.item.added", item=item), self.event("conversation.item.done", item=item)]
        if kind == "conversation.item.truncate":
            return self._truncate(obj)
        if kind == "response.create":
            if self.response is not None:
                return [
                    self._error(
                        "conversation_already_has_active_response", "Conversation already has an active response"
                    )
                ]
            return self.start_response(reply)
        if kind == "response.cancel":
            if self.response is None:
                return [self._error("response_cancel_not_active", "Cancellation failed: no active response found")]
            return self.finish_response("cancelled", "client_cancelled")
        return [self._error("invalid_type", f"Invalid event type {str(kind)[:40]!r}")]

    def _error(self, code: str, message: str, param: str | None = None) -> dict[str, Any]:
        return self.event(
            "error", error={"type": "invalid_request_error", "code": code, "message": message, "param": param}
        )

    def _update(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        new = obj.get("session")
        if not isinstance(new, dict) or new.get("type") != "realtime" or _BETA_KEYS & set(new):
            return [self._error("invalid_value", "session.type 'realtime' is required; beta fields are not accepted")]
        for key, value in new.items():
            if key == "audio" and isinstance(value, dict):
                for side in ("input", "output"):
                    self.session["audio"][side].update(value.get(side) or {})
            else:
                self.session[key] = value
        return [self.event("session.updated", session=self.session)]

    def _append(self, obj: dict[str, Any], reply: NextReply) -> list[dict[str, Any]]:
        audio = base64.b64decode(obj.get("audio") or "")
        chunk_ms = len(audio) / _BPMS[self.in_format]
        self.appended_bytes += len(audio)
        now_ms = self.appended_bytes / _BPMS[self.in_format]
        td = self.turn_detection
        if td is None:
            return []
        loud = _rms(_pcm(audio, self.in_format)) > SPEECH_RMS
        out: list[dict[str, Any]] = []
        if loud:
            self.speech_ms += chunk_ms
            self.silence_ms = 0.0
            if not self.speaking and self.speech_ms >= 60:
                self.speaking = True
                self.user_item = self.new_id("item")
                start = max(0.0, now_ms - self.speech_ms - td.get("prefix_padding_ms", 300))
                out.append(
                    self.event("input_audio_buffer.speech_started", audio_start_ms=int(start), item_id=self.user_item)
                )
                if self.response is not None and td.get("interrupt_response", True):
                    out += self.finish_response("cancelled", "turn_detected")
        else:
            self.speech_ms = 0.0 if not self.speaking else self.speech_ms
            self.silence_ms += chunk_ms
            if self.speaking and self.silence_ms >= td.get("silence_duration_ms", 500):
                self.speaking = False
                self.speech_ms = 0.0
                out += self._speech_stopped(int(now_ms), reply if td.get("create_response", True) else None)
        return out

    def _speech_stopped(self, end_ms: int, reply: NextReply | None) -> list[dict[str, Any]]:
        item_id = self.user_item or self.new_id("item")
        out = [self.event("input_audio_buffer.speech_stopped", audio_end_ms=end_ms, item_id=item_id)]
        out += self._committed(item_id)
        if reply is not None and self.response is None:
            out += self.start_response(reply)
        return out

    def _commit(self) -> list[dict[str, Any]]:
        if self.appended_bytes == 0:
            return [
                self._error("input_audio_buffer_commit_empty", "Error committing input audio buffer: buffer too small")
            ]
        return self._committed(self.user_item or self.new_id("item"))

    def _committed(self, item_id: str) -> list[dict[str, Any]]:
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}]}  # fmt: skip
        text = self.transcripts.pop(0) if self.transcripts else "hello"
        return [
            self.event("input_audio_buffer.committed", item_id=item_id, previous_item_id=None),
            self.event("conversation.item.added", item=item),
            self.event("conversation.item.done", item=item),
            self.event("conversation.item.input_audio_transcription.completed", item_id=item_id, content_index=0,
                       transcript=text, usage={"type": "duration", "seconds": 1.0}),
        ]  # fmt: skip

    def _truncate(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        self.truncates.append(obj)
        item_id, end = obj.get("item_id"), obj.get("audio_end_ms")
        if item_id not in self.items:
            return [self._error("item_truncate_invalid_item_id", f"Item {str(item_id)[:40]} not found", "item_id")]
        if not isinstance(end, int) or isinstance(end, bool) or end < 0:
            return [self._error("invalid_value", f"Invalid value for audio_end_ms: {end!r}", "audio_end_ms")]
        have = self.items[str(item_id)]
        if end > have:
            message = f"Audio content of {math.floor(have)}ms is already shorter than {end}ms"
            return [self._error("invalid_value", message, "audio_end_ms")]
        self.items[str(item_id)] = float(end)
        return [self.event("conversation.item.truncated", item_id=item_id, content_index=0, audio_end_ms=end)]

    # --- responses ---------------------------------------------------------------------

    def start_response(self, next_reply: NextReply) -> list[dict[str, Any]]:
        reply = next_reply()
        rid, item_id = self.new_id("resp"), self.new_id("item")
        text = getattr(reply, "text", "") or ""
        tools = getattr(reply, "tool_calls", ())
        chunks = self._speech(text) if text and not tools else []
        words = text.split()
        per = max(1, math.ceil(len(words) / max(1, len(chunks))))
        transcript = [" ".join(words[i : i + per]) + " " for i in range(0, len(words), per)]
        self.response = Response(rid, item_id, chunks, transcript, reply)
        if chunks:
            self.items[item_id] = 0.0
        resp = {"object": "realtime.response", "id": rid, "status": "in_progress", "output": [],
                "conversation_id": "conv_1", "output_modalities": ["audio"], "usage": None}  # fmt: skip
        out = [self.event("response.created", response=resp)]
        if tools:
            return out + self._tool_events(reply) + self.finish_response("completed", None)
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "assistant",
                "status": "in_progress", "content": []}  # fmt: skip
        out.append(self.event("response.output_item.added", response_id=rid, output_index=0, item=item))
        part = {"type": "audio", "transcript": ""}
        out.append(self.event("response.content_part.added", response_id=rid, item_id=item_id, output_index=0,
                              content_index=0, part=part))  # fmt: skip
        return out

    def _speech(self, text: str) -> list[bytes]:
        fmt = self.out_format
        rate = 24000 if fmt == "audio/pcm" else 8000
        voice = SyntheticVoice(self.voice.ms_per_char, self.voice.word_gap_ms, rate, self.voice.amplitude)
        pcm = voice.synthesize(text)
        data = pcm_to_ulaw(pcm) if fmt == "audio/pcmu" else pcm_to_alaw(pcm) if fmt == "audio/pcma" else pcm
        size = _BPMS[fmt] * self.chunk_ms
        return [data[i : i + size] for i in range(0, len(data), size)]

    def _tool_events(self, reply: RealtimeReply) -> list[dict[str, Any]]:
        assert self.response is not None
        out = []
        for index, call in enumerate(reply.tool_calls):
            item_id, call_id, args = self.new_id("item"), self.new_id("call"), json.dumps(call.arguments)
            item = {"id": item_id, "object": "realtime.item", "type": "function_call", "status": "completed",
                    "call_id": call_id, "name": call.name, "arguments": args}  # fmt: skip
            ids = {"response_id": self.response.id, "item_id": item_id, "output_index": index, "call_id": call_id}
            out.append(self.event("response.output_item.added", response_id=self.response.id, output_index=index,
                                  item={**item, "arguments": "", "status": "in_progress"}))  # fmt: skip
            out.append(self.event("response.function_call_arguments.delta", **ids, delta=args))
            out.append(self.event("response.function_call_arguments.done", **ids, name=call.name, arguments=args))
            out.append(
                self.event("response.output_item.done", response_id=self.response.id, output_index=index, item=item)
            )
        return out

    def next_delta(self) -> list[dict[str, Any]]:
        """The next audio chunk of the running response (and its transcript piece), or its end."""
        r = self.response
        if r is None:
            return []
        if r.sent >= len(r.chunks):
            return self._audio_done() + self.finish_response("completed", None)
        chunk = r.chunks[r.sent]
        ids = {"response_id": r.id, "item_id": r.item_id, "output_index": 0, "content_index": 0}
        out = [self.event("response.output_audio.delta", **ids, delta=base64.b64encode(chunk).decode())]
        if r.sent < len(r.transcript):
            out.append(self.event("response.output_audio_transcript.delta", **ids, delta=r.transcript[r.sent]))
        r.sent += 1
        self.items[r.item_id] = self.items.get(r.item_id, 0.0) + len(chunk) / _BPMS[self.out_format]
        return out

    def _audio_done(self) -> list[dict[str, Any]]:
        r = self.response
        assert r is not None
        ids = {"response_id": r.id, "item_id": r.item_id, "output_index": 0, "content_index": 0}
        text = getattr(r.reply, "text", "")
        return [
            self.event("response.output_audio.done", **ids),
            self.event("response.output_audio_transcript.done", **ids, transcript=text),
            self.event("response.content_part.done", **ids, part={"type": "audio", "transcript": text}),
        ]

    def finish_response(self, status: str, reason: str | None) -> list[dict[str, Any]]:
        r, self.response = self.response, None
        if r is None:
            return []
        details = {"type": status, "reason": reason} if reason else None
        resp = {"object": "realtime.response", "id": r.id, "status": status, "status_details": details, "output": [],
                "conversation_id": "conv_1", "output_modalities": ["audio"], "usage": None}  # fmt: skip
        return [self.event("response.done", response=resp)]


def _pcm(audio: bytes, fmt: str) -> bytes:
    return ulaw_to_pcm(audio) if fmt == "audio/pcmu" else alaw_to_pcm(audio) if fmt == "audio/pcma" else audio


def _rms(pcm: bytes) -> float:
    import numpy as np

    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
