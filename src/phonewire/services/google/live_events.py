"""Gemini Live (``BidiGenerateContent``) messages, sans-I/O: client messages built, server
messages parsed. camelCase JSON, one top-level field per client message; a server message may
bundle several fields (audio, transcripts, ``interrupted``, ``turnComplete``) and is read whole.
Shapes are checked against ``google.genai.types`` (``LiveClientMessage``/``LiveServerMessage``)
in the tests. ``parse_server_message`` never raises."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "LiveServerMessage",
    "audio_input",
    "duration_secs",
    "live_url",
    "parse_server_message",
    "setup",
    "tool_response",
]

DEFAULT_BASE_URL = "wss://generativelanguage.googleapis.com"
PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
INPUT_RATE = 16000
OUTPUT_RATE = 24000
_AUDIO_HEAD = '{"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate=16000","data":"'


def live_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + PATH, "", ""))


def setup(
    model: str,
    *,
    instructions: str | None,
    voice: str | None,
    tools: list[dict[str, Any]],
    resumption: bool = True,
    handle: str | None = None,
) -> str:
    """``resumption``: ask for ``sessionResumptionUpdate`` handles; ``handle``: resume that
    session (its context) on this new connection."""
    body: dict[str, Any] = {
        "model": model if model.startswith("models/") else f"models/{model}",
        "generationConfig": {"responseModalities": ["AUDIO"]},
        "inputAudioTranscription": {},
        "outputAudioTranscription": {},
    }
    if resumption or handle:
        body["sessionResumption"] = {"handle": handle} if handle else {}
    if voice:
        body["generationConfig"]["speechConfig"] = {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": voice}}}
    if instructions:
        body["systemInstruction"] = {"parts": [{"text": instructions}]}
    if tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in tools]}]
    return json.dumps({"setup": body}, separators=(",", ":"))


def _declaration(tool: dict[str, Any]) -> dict[str, Any]:
    inner = tool.get("function")
    fn: dict[str, Any] = inner if isinstance(inner, dict) else tool
    out = {"name": fn["name"], "description": fn.get("description", "")}
    if "parameters" in fn:
        out["parameters"] = fn["parameters"]
    return out


def audio_input(pcm16k: bytes) -> str:
    """The per-packet message: base64 spliced into a constant prefix."""
    return _AUDIO_HEAD + base64.b64encode(pcm16k).decode("ascii") + '"}}}'


def tool_response(call_id: str, name: str, result: Any) -> str:
    response = result if isinstance(result, dict) else {"result": result}
    body = {"functionResponses": [{"id": call_id, "name": name, "response": response}]}
    return json.dumps({"toolResponse": body}, separators=(",", ":"))


@dataclass(slots=True)
class LiveServerMessage:
    setup_complete: bool = False
    audio: list[bytes] = field(default_factory=list)
    interrupted: bool = False
    turn_complete: bool = False
    input_text: str = ""
    output_text: str = ""
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (id, name, args)
    go_away: bool = False
    #: ``goAway.timeLeft`` in seconds (None: absent or unreadable)
    go_away_secs: float | None = None
    #: a ``sessionResumptionUpdate``: (``newHandle`` or "", ``resumable``)
    resumption: tuple[str, bool] | None = None
    problem: str | None = None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)s\s*$")


def duration_secs(value: Any) -> float | None:
    """A protobuf ``Duration`` in JSON ("9.5s"); numbers are taken as seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if value >= 0 else None
    match = _DURATION.match(value) if isinstance(value, str) else None
    return float(match.group(1)) if match else None


def parse_server_message(data: str | bytes) -> LiveServerMessage:
    """Frames may be binary frames carrying JSON text: both decode the same way."""
    msg = LiveServerMessage()
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        msg.problem = "not JSON"
        return msg
    if not isinstance(obj, dict):
        msg.problem = "not a JSON object"
        return msg
    msg.setup_complete = "setupComplete" in obj
    go_away = obj.get("goAway")
    if go_away is not None:
        msg.go_away = True
        msg.go_away_secs = duration_secs(go_away.get("timeLeft")) if isinstance(go_away, dict) else None
    update = obj.get("sessionResumptionUpdate")
    if isinstance(update, dict):
        handle = update.get("newHandle")
        msg.resumption = (handle if isinstance(handle, str) else "", update.get("resumable") is True)
    _content(obj.get("serverContent"), msg)
    _tools(obj.get("toolCall"), msg)
    return msg


def _content(content: Any, msg: LiveServerMessage) -> None:
    if not isinstance(content, dict):
        return
    msg.interrupted = content.get("interrupted") is True
    msg.turn_complete = content.get("turnComplete") is True
    for key, attr in (("inputTranscription", "input_text"), ("outputTranscription", "output_text")):
        part = content.get(key)
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            setattr(msg, attr, part["text"])
    turn = content.get("modelTurn")
    parts = turn.get("parts") if isinstance(turn, dict) else None
    for part in parts if isinstance(parts, list) else []:
        inline = part.get("inlineData") if isinstance(part, dict) else None
        if isinstance(inline, dict) and isinstance(inline.get("data"), str):
            try:
                msg.audio.append(base64.b64decode(inline["data"], validate=True))
            except (binascii.Error, ValueError):
                msg.problem = "audio that is not base64"


def _tools(call: Any, msg: LiveServerMessage) -> None:
    calls = call.get("functionCalls") if isinstance(call, dict) else None
    for fc in calls if isinstance(calls, list) else []:
        if isinstance(fc, dict) and isinstance(fc.get("id"), str) and isinstance(fc.get("name"), str):
            args = fc.get("args")
            msg.tool_calls.append((fc["id"], fc["name"], args if isinstance(args, dict) else {}))
