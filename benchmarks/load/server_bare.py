"""The web stack's own ceiling: a bare ASGI WebSocket echo of the same messages (benchmark only).

No framework, no frames, no codec: it accepts the Twilio handshake messages, and for each
media message sends back a media message with the same base64 payload (string slicing only),
on the same uvicorn stack as the phonewire server (websockets-sansio, uvloop, httptools, no
deflate). Its CPU per call is what any Python transport on this stack pays at least; the issue
asks phonewire to stay within a factor of two of it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import probe


def build_app(*, probe_on: bool = True) -> Any:
    probe.install(probe_on)
    state = {"active": 0}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "http":
            await _http(scope, receive, send, state)
            return
        await _echo(scope, receive, send, state)

    return app


async def _http(scope: dict[str, Any], receive: Any, send: Any, state: dict[str, int]) -> None:
    if scope["path"] == "/bench/stats":
        probe.ensure_loop_watch()
        if b"reset=1" in scope.get("query_string", b""):
            probe.PROBE.reset()
            body: dict[str, Any] = {"reset": True}
        else:
            body = probe.PROBE.summary()
            body["framework"] = "bare"
        body["active_calls"] = state["active"]
    else:
        body = {"status": "ok", "active_calls": state["active"]}
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _echo(scope: dict[str, Any], receive: Any, send: Any, state: dict[str, int]) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    conn = scope.get("pw.conn")
    prefix = None
    state["active"] += 1
    probe.ensure_loop_watch()
    try:
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            text = message.get("text") or ""
            i = text.find('"payload":"')
            if i < 0:
                if prefix is None and '"start"' in text:
                    sid = json.loads(text).get("streamSid", "")
                    prefix = '{"event":"media","streamSid":' + json.dumps(sid) + ',"media":{"payload":"'
                continue
            payload = text[i + 11 : text.index('"', i + 11)]
            if conn is not None:
                probe.on_echo_b64(conn, payload)
            await send({"type": "websocket.send", "text": f'{prefix}{payload}"}}}}'})
    finally:
        state["active"] -= 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--vad", choices=["none"], default="none")
    parser.add_argument("--no-probe", action="store_true")
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    import uvicorn

    uvicorn.run(
        build_app(probe_on=not args.no_probe),
        host="127.0.0.1",
        port=args.port,
        ws="websockets-sansio",
        loop="uvloop",
        http="httptools",
        ws_per_message_deflate=False,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
