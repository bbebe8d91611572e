"""What the JSON media-stream serializers (Twilio, Telnyx, Plivo, Exotel) share.

Each of them speaks ``{"event": ..., <stream key>: ..., ...}`` text frames: ``deserialize`` parses
one, checks it and dispatches on ``event`` to the subclass's ``_handlers`` table. This base holds
the dispatch, the stream-id check (a message naming another stream is refused), the start guard
(one ``start`` per stream, for this stream) and the handlers and encoders that are the same
everywhere (``connected``, ``mark``, ``stop``, media envelopes, messages limited to the provider's own
events). Per-provider facts stay in the subclasses: the stream key, the events, the formats.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

from phonewire.exceptions import LocalProtocolError, RemoteProtocolError
from phonewire.frames import Frame
from phonewire.serializers._values import b64encode, field, load_object, preview
from phonewire.serializers.base import (
    CallInfo,
    FrameSerializer,
    Message,
    PlaybackMarkReached,
    SerializerEvent,
    StreamStarted,
    StreamStopped,
)

__all__ = ["INBOUND_TRACKS", "JSONStreamSerializer", "compact_json"]

Handler = Callable[[Any, dict[str, Any]], list[Frame | SerializerEvent]]

#: The ``media.track`` values that are the caller (both_tracks streams also carry our own audio).
#: A tuple, not a set: an unchecked track may be any JSON value, a list among them.
INBOUND_TRACKS = ("inbound", "inbound_track")


def compact_json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class JSONStreamSerializer(FrameSerializer):
    """Base of the JSON text-frame serializers. Subclasses set ``stream_key``, ``_handlers`` and
    ``_outbound_events``, and keep the stream's id in ``_stream`` (set before ``_media_prefix``)."""

    #: The key that names the stream in a message ("streamSid", "stream_id", ...).
    stream_key: ClassVar[str]
    #: The events the protocol has; unless a subclass writes its own ``_handlers`` table, each
    #: is handled by the method ``_on_<event>`` (the subclass's own, or this base's).
    _events: ClassVar[tuple[str, ...]] = ("connected", "start", "media", "dtmf", "mark", "stop")
    #: event name -> handler (an unbound method of the subclass).
    _handlers: ClassVar[dict[str, Handler]]
    #: The events ``encode_message`` lets through (the provider's own).
    _outbound_events: ClassVar[frozenset[str]]
    #: Appended to the refusal of any other message (e.g. the provider's error code for it).
    _outbound_note: ClassVar[str] = ""
    #: Whether the commands we send (mark, clear, messages) name the stream (Telnyx's do not).
    _commands_name_stream: ClassVar[bool] = True
    _stream: str
    started: bool = False
    #: Set by a ``stop`` message (the provider ended the stream).
    stopped: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_handlers" not in cls.__dict__:
            cls._handlers = {event: getattr(cls, f"_on_{event}") for event in cls._events}

    # --- inbound -----------------------------------------------------------------------

    def deserialize(self, data: Message) -> list[Frame | SerializerEvent]:
        return self._dispatch(load_object(data, self.provider))

    def _dispatch(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        event = msg.get("event")
        handler = self._handlers.get(event) if isinstance(event, str) else None
        if handler is None:
            raise RemoteProtocolError(f"{self.provider}: unknown event {preview(event, 40)}")
        return handler(self, msg)

    def _check_stream(self, msg: dict[str, Any]) -> None:
        sid = msg.get(self.stream_key)
        if sid is not None and sid != self._stream:
            raise RemoteProtocolError(f"{self.provider}: message for another {self.stream_key}")

    def _accept_start(self, info: CallInfo) -> StreamStarted:
        """The start guard: the start must name this stream and come once."""
        if info.stream_id != self._stream:
            raise RemoteProtocolError(f"{self.provider}: start for another {self.stream_key}")
        if self.started:
            raise RemoteProtocolError(f"{self.provider}: second start on one stream")
        self.started = True
        return StreamStarted(info)

    def _media(self, msg: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """A media message's ``media`` object, and whether its track is the caller's (the
        message must be for this stream and ``media.track``, if given, a string)."""
        self._check_stream(msg)
        media = field(msg, "media", dict, self.provider)
        track = media.get("track", "inbound")
        if not isinstance(track, str):
            raise RemoteProtocolError(f"{self.provider}: media.track is not a string")
        return media, track in INBOUND_TRACKS

    def _on_connected(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        return []

    def _on_mark(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        """``{"event": "mark", "mark": {"name": ...}}``: audio before our mark has played."""
        self._check_stream(msg)
        name = field(msg, "mark", dict, self.provider).get("name")
        if not isinstance(name, str):
            raise RemoteProtocolError(f"{self.provider}: mark without a name")
        return [PlaybackMarkReached(name)]

    def _on_stop(self, msg: dict[str, Any]) -> list[Frame | SerializerEvent]:
        """``{"event": "stop", ...}``: the provider ended the stream."""
        self._check_stream(msg)
        self.stopped = True
        return [StreamStopped(self._stop_reason(msg))]

    def _stop_reason(self, msg: dict[str, Any]) -> str:
        """The ``StreamStopped`` reason of a ``stop`` message (a provider that gives one overrides)."""
        return "stop"

    # --- outbound ----------------------------------------------------------------------

    def _media_prefix(self, media: str = '"media":{"payload":"', *, with_stream: bool = True) -> str:
        """The text before the base64 payload of a ``media`` message (closed by ``'"}}'``)."""
        stream = f'"{self.stream_key}":{json.dumps(self._stream)},' if with_stream else ""
        return '{"event":"media",' + stream + media

    def _envelope(self, prefix: str, payload: bytes) -> str:
        return prefix + b64encode(payload) + '"}}'

    def _command(self, event: str, **fields: Any) -> str:
        stream = {self.stream_key: self._stream} if self._commands_name_stream else {}
        return compact_json({"event": event, **stream, **fields})

    def encode_clear(self) -> list[Message]:
        return [self._command("clear")]

    def encode_mark(self, name: str) -> list[Message]:
        return [self._command("mark", mark={"name": name})]

    def encode_message(self, message: Any) -> list[Message]:
        return self._own_event(message, with_stream=self._commands_name_stream)

    def _own_event(self, message: Any, *, with_stream: bool = True) -> list[Message]:
        """A bot's transport message, if it is one of the provider's own events."""
        if not isinstance(message, dict) or message.get("event") not in self._outbound_events:
            allowed = "/".join(sorted(self._outbound_events))
            raise LocalProtocolError(f"{self.provider} accepts only {allowed} messages{self._outbound_note}")
        if with_stream:
            message = {**message, self.stream_key: self._stream}
        try:
            return [compact_json(message)]
        except (TypeError, ValueError) as exc:
            raise LocalProtocolError(
                f"{self.provider}: message is not JSON-serializable ({type(exc).__name__})"
            ) from None
