"""A Twilio phone bot that repeats what the caller says, usable with a real number.

    uvicorn examples.twilio_echo_bot:app --host 0.0.0.0 --port 8000 --ws websockets-sansio

Point the number's Voice webhook (HTTP POST) at https://YOUR_HOST/twiml; put a TLS
tunnel or proxy in front (Twilio only streams to wss:// on 443). Set TWILIO_ACCOUNT_SID
and TWILIO_AUTH_TOKEN to let the bot hang up through Twilio's REST API when it ends.
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Request, Response, WebSocket

from phonewire import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
    Pipeline,
    PipelineRunner,
    PipelineTask,
    TwilioFrameSerializer,
    read_handshake,
)
from phonewire.processors import EchoProcessor
from phonewire.telephony.documents import twiml_connect_stream
from phonewire.transports import RawWebSocketMiddleware

app = FastAPI()
# Optional: the transport sends and receives through uvicorn directly, skipping Starlette's
# per-message wrappers (docs/transport.md).
app.add_middleware(RawWebSocketMiddleware)


@app.post("/twiml")
async def twiml(request: Request) -> Response:
    # Twilio fetches this when the call comes in; the answer connects the call to /ws.
    stream_url = f"wss://{request.headers['host']}/ws"
    return Response(twiml_connect_stream(stream_url), media_type="application/xml")


@app.websocket("/ws")
async def media_stream(websocket: WebSocket) -> None:
    await websocket.accept()
    # Twilio's "connected" and "start" messages: who is calling, which stream.
    handshake = await read_handshake(websocket, providers=["twilio"], timeout=10)
    serializer = TwilioFrameSerializer(
        stream_sid=handshake.info.stream_id or "",
        call_sid=handshake.info.call_id,
        account_sid=os.getenv("TWILIO_ACCOUNT_SID"),
        auth_token=os.getenv("TWILIO_AUTH_TOKEN"),
    )
    transport = FastAPIWebsocketTransport(
        websocket,
        FastAPIWebsocketParams(audio_in_enabled=True, audio_out_enabled=True, serializer=serializer),
        handshake=handshake,
    )
    task = PipelineTask(Pipeline([transport.input(), EchoProcessor(), transport.output()]))

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: FastAPIWebsocketTransport, websocket: WebSocket) -> None:
        transport.log.info("caller connected")

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: FastAPIWebsocketTransport, websocket: WebSocket) -> None:
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)
