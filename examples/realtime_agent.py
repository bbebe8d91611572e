"""A speech-to-speech phone agent on the OpenAI Realtime API: Twilio in, μ-law end to end.

    python examples/realtime_agent.py --host 0.0.0.0 --port 8000

Serves Twilio Media Streams on ``/ws`` (and TwiML on ``POST /twiml`` pointing at it). The
caller's μ-law goes to the model untouched and the model's ``audio/pcmu`` comes back untouched;
the model's own VAD takes turns and barge-in truncates its answer at what the caller heard.
``OPENAI_API_KEY``; ``OPENAI_BASE_URL`` (an ``http(s)://host/v1`` base, default OpenAI: the
Realtime WebSocket URL ``ws(s)://host/v1/realtime?model=...`` follows from it as the SDK
derives it); ``OPENAI_REALTIME_MODEL`` (default gpt-realtime), ``OPENAI_REALTIME_VOICE``.
"""

from __future__ import annotations

import argparse
import datetime
import os

import uvicorn
from fastapi import FastAPI, Request, Response, WebSocket

from phonewire import FastAPIWebsocketParams, FastAPIWebsocketTransport, read_handshake
from phonewire.frames import LLMRunFrame
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.services.openai.realtime import OpenAIRealtimeLLMService
from phonewire.telephony.documents import twiml_connect_stream
from phonewire.transports import RawWebSocketMiddleware

INSTRUCTIONS = (
    "You are a friendly assistant on a phone call. Greet the caller briefly, then answer in one or two short sentences."
)
TOOLS = [
    {
        "type": "function",
        "name": "get_current_time",
        "description": "The current date and time where the caller is.",
        "parameters": {"type": "object", "properties": {}},
    }
]


async def get_current_time(params):  # a tool: the model calls it, its reply uses the result
    await params.result_callback({"now": datetime.datetime.now().strftime("%A %H:%M")})


async def run_bot(transport: FastAPIWebsocketTransport) -> None:
    transport.input().use_wire_audio()  # μ-law bytes as carried: no decode, no resample
    llm = OpenAIRealtimeLLMService(
        model=os.environ.get("OPENAI_REALTIME_MODEL", "gpt-realtime"),
        voice=os.environ.get("OPENAI_REALTIME_VOICE", "marin"),
        instructions=INSTRUCTIONS,
        tools=TOOLS,
        audio_format="pcmu",
    )
    llm.register_function("get_current_time", get_current_time)
    task = PipelineTask(Pipeline([transport.input(), llm, transport.output()]))

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport, websocket):
        await task.cancel()

    await task.queue_frame(LLMRunFrame())  # the greeting
    await PipelineRunner(handle_sigint=False).run(task)


app = FastAPI()
app.add_middleware(RawWebSocketMiddleware)


@app.post("/twiml")
async def twiml(request: Request) -> Response:
    return Response(twiml_connect_stream(f"wss://{request.headers['host']}/ws"), media_type="application/xml")


@app.websocket("/ws")
async def media_stream(websocket: WebSocket) -> None:
    await websocket.accept()
    handshake = await read_handshake(websocket, providers=["twilio"], timeout=10)
    params = FastAPIWebsocketParams(audio_in_enabled=True, audio_out_enabled=True, serializer=handshake.serializer)
    await run_bot(FastAPIWebsocketTransport(websocket, params, handshake=handshake))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, ws="websockets-sansio", ws_per_message_deflate=False)
