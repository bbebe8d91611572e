"""Proposed optimisations of src/, as benchmark-only monkeypatches, to measure before adopting.

Nothing here is used by phonewire itself. Each patch changes one thing and keeps behaviour;
its gain is measured with ``profile_transport.py --patch NAME`` (phonewire's own µs per
packet, in-process) and the load benchmark (system ``phonewire-proposed`` = all of them).
docs/benchmarks.md has the numbers and the file/function each change belongs in.

Adopted in src/ at 0a31507 and removed from here (measured with this harness first): audio
sent on the producer's task when the pacer is idle (``output._send_inline``), one utterance-gap
timer per silence instead of a task created and cancelled per packet (``output._gap_loop``),
a per-call watchdog instead of an ``asyncio.timeout`` per message (``FastAPIWebsocketTransport
.send``/input ``_read_until_closed``), ``gc.freeze()`` in ``phonewire serve``.

Still proposed (``apply("all")`` or a comma list):

* ``gc_freeze`` - ``gc.freeze()`` once the app has started, for every ``create_app`` user
                  (src/ does it only in ``cli.app_from_env``, so an app run by uvicorn
                  directly still walks ~70k module objects in each full collection: 40-80 ms
                  pauses, heard by every call at once).
* ``raw_asgi``  - send and receive through uvicorn's ASGI callables instead of Starlette's
                  ``WebSocket`` wrappers (three coroutine layers per message).
* ``marks_1s``  - a playback mark every second of bot speech instead of every 200 ms: marks
                  and their echoes are ~10 % of a call's messages in each direction.
"""

from __future__ import annotations

import gc
from typing import Any

__all__ = ["PATCHES", "apply"]


def gc_freeze() -> None:
    gc.collect()
    gc.freeze()


# --- raw_asgi --------------------------------------------------------------------------------


def raw_asgi() -> None:
    """Send and receive through the ASGI server's own callables, not Starlette's wrappers.

    Starlette's ``WebSocket.send_text`` goes through ``WebSocket.send`` (state checks) and
    the exception middleware's ``sender`` wrapper(s) before reaching uvicorn; ``receive`` has
    its own checks. In src/ a pure-ASGI middleware installed by ``create_app`` would put the
    raw ``(receive, send)`` into the scope; here the probe's uvicorn hook does
    (``scope["pw.asgi"]``). Falls back to Starlette when absent.
    """
    from phonewire.transports import fastapi as fa
    from phonewire.transports import input as inp

    T = fa.FastAPIWebsocketTransport
    send_original = T.send

    async def send(self: Any, message: Any, guard: Any = None) -> bool:
        ws = self._websocket
        if "_raw_asgi" not in self.__dict__:
            raw = ws.scope.get("pw.asgi")
            self._raw_asgi = raw
            if raw is not None:  # instance attributes: Starlette's methods stay for everyone else
                raw_send = raw[1]

                async def send_text(data: str) -> None:
                    await raw_send({"type": "websocket.send", "text": data})

                async def send_bytes(data: bytes) -> None:
                    await raw_send({"type": "websocket.send", "bytes": data})

                ws.send_text, ws.send_bytes = send_text, send_bytes
        return await send_original(self, message, guard)

    T.send = send

    Input = inp.FastAPIWebsocketInputTransport
    read_original = Input._read_until_closed

    async def _read_until_closed(self: Any) -> str:
        ws = self._t.websocket
        raw = ws.scope.get("pw.asgi")
        if raw is not None:
            ws.receive = raw[0]  # instance attribute: Starlette's method stays for everyone else
        return await read_original(self)

    Input._read_until_closed = _read_until_closed


def marks_1s() -> None:
    """A playback mark every second of bot speech instead of every 200 ms (fewer messages)."""
    from phonewire.transports import playback

    init = playback.PlaybackTracker.__init__

    def __init__(self: Any, *, acks: bool, mark_interval_ms: float = 1000.0) -> None:
        init(self, acks=acks, mark_interval_ms=mark_interval_ms)

    playback.PlaybackTracker.__init__ = __init__


PATCHES = {
    "gc_freeze": gc_freeze,
    "raw_asgi": raw_asgi,
    "marks_1s": marks_1s,
}


def apply(spec: str) -> list[str]:
    names = list(PATCHES) if spec == "all" else [s for s in spec.split(",") if s]
    for name in names:
        PATCHES[name]()
    return names
