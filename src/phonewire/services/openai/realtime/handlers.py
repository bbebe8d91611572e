"""What the service does with each server event (one small function per event type).

Kept apart from ``service.py`` so each reaction reads on its own; all of them run on the
connection's reader task. A handler returns a reason to drop the connection, or None.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from phonewire.frames import TTSStartedFrame, UserStartedSpeakingFrame
from phonewire.services.openai.realtime.events import BENIGN_ERRORS, ServerEvent

if TYPE_CHECKING:
    from phonewire.services.openai.realtime.service import OpenAIRealtimeLLMService as Service

__all__ = ["dispatch"]

logger = logging.getLogger("phonewire.services.openai.realtime")
Handler = Callable[["Service", ServerEvent], Awaitable[str | None]]
#: Errors after which this session cannot go on: reconnect (and replay the context).
SESSION_ENDING = frozenset({"session_expired"})


async def dispatch(service: Service, event: ServerEvent) -> str | None:
    handler = _HANDLERS.get(event.type)
    return None if handler is None else await handler(service, event)


async def _speech_started(s: Service, e: ServerEvent) -> str | None:
    await s.push_frame(UserStartedSpeakingFrame())
    await s.interrupt("server VAD")
    return None


async def _speech_stopped(s: Service, e: ServerEvent) -> str | None:
    await s.caller_stopped()
    return None


async def _committed(s: Service, e: ServerEvent) -> str | None:
    item_id = e.str_field("item_id")
    if item_id:
        s.user_item(item_id)
    return None


async def _user_transcript(s: Service, e: ServerEvent) -> str | None:
    item_id = e.str_field("item_id") or ""
    transcript = e.str_field("transcript")
    s.user_transcript(item_id, transcript.strip() if transcript else None)
    return None


async def _user_transcript_failed(s: Service, e: ServerEvent) -> str | None:
    s.user_transcript(e.str_field("item_id") or "", None)
    return None


async def _response_created(s: Service, e: ServerEvent) -> str | None:
    response = e.get("response")
    response_id = response.get("id") if isinstance(response, dict) else None
    if isinstance(response_id, str):
        await s.begin_reply(response_id)
    return None


async def _audio_delta(s: Service, e: ServerEvent) -> str | None:
    response_id, item_id = e.str_field("response_id"), e.str_field("item_id")
    reply = s._reply
    if s.is_muted(response_id) or reply is None or reply.response_id != response_id or not item_id:
        return None  # a cancelled response's tail: never played
    audio = e.audio()
    if not audio:
        s.count_error("protocol", "audio delta without base64 audio")
        return None
    if not reply.audio_started:
        reply.audio_started = True
        await s.push_first_token_stage()
        await s.push_frame(TTSStartedFrame())
    reply.add_audio(item_id, len(audio))
    await s.push_frame(s.audio_frame(audio))
    return None


async def _transcript_delta(s: Service, e: ServerEvent) -> str | None:
    reply, item_id, delta = s._reply, e.str_field("item_id"), e.str_field("delta")
    if reply is not None and reply.response_id == e.str_field("response_id") and item_id and delta:
        reply.add_transcript(item_id, delta)
    return None


async def _arguments_done(s: Service, e: ServerEvent) -> str | None:
    name, call_id, raw = e.str_field("name"), e.str_field("call_id"), e.str_field("arguments") or "{}"
    if not name or not call_id:
        s.count_error("protocol", "function call without name or call_id")
        return None
    problem, arguments = None, None
    try:
        parsed: Any = json.loads(raw)
        arguments = parsed if isinstance(parsed, dict) else None
        problem = None if arguments is not None else "arguments are not a JSON object"
    except ValueError:
        problem = "arguments are not JSON"
    s._pending_calls.append(s.requested_call(name, call_id, arguments, problem))
    return None


async def _response_done(s: Service, e: ServerEvent) -> str | None:
    response = e.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("id"), str):
        return None
    status = response.get("status")
    await s.end_reply(response["id"], status if isinstance(status, str) else None)
    calls, s._pending_calls = s._pending_calls, []
    if calls and status != "cancelled":
        await s.start_calls(response["id"], calls)
    return None


async def _error(s: Service, e: ServerEvent) -> str | None:
    code = e.error_code() or "unknown"
    if code in BENIGN_ERRORS:
        logger.debug("- %s benign realtime error %s", s.name, code)
        return None
    if code in SESSION_ENDING:
        logger.info("= %s session ended by the API (%s): reconnecting", s.name, code)
        return "renew"
    await s._fail("api_error", f"{code}: {e.error_message()}")
    return None


_HANDLERS: dict[str, Handler] = {
    "input_audio_buffer.speech_started": _speech_started,
    "input_audio_buffer.speech_stopped": _speech_stopped,
    "input_audio_buffer.committed": _committed,
    "conversation.item.input_audio_transcription.completed": _user_transcript,
    "conversation.item.input_audio_transcription.failed": _user_transcript_failed,
    "response.created": _response_created,
    "response.output_audio.delta": _audio_delta,
    "response.output_audio_transcript.delta": _transcript_delta,
    "response.function_call_arguments.done": _arguments_done,
    "response.done": _response_done,
    "error": _error,
}
