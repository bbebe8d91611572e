"""A phone agent on OpenAI-compatible services: Pipecat's twilio-chatbot, ported to phonewire.

    python examples/openai_agent.py --host 0.0.0.0 --port 8000

Serves Twilio Media Streams on ``/ws`` (and TwiML on ``POST /twiml`` pointing at it). Speech
to text, the LLM and text to speech all go to ``OPENAI_BASE_URL`` (default: OpenAI) with
``OPENAI_API_KEY``; any OpenAI-compatible server works (vLLM, Ollama, llama.cpp, Groq...).
Models by environment: ``OPENAI_LLM_MODEL``, ``OPENAI_STT_MODEL``, ``OPENAI_TTS_MODEL``,
``OPENAI_TTS_VOICE``. Needs ``pip install "phonewire[openai]"``.
"""

from __future__ import annotations

import argparse
import datetime
import os

import uvicorn
from fastapi import FastAPI, Request, Response, WebSocket

from phonewire import FastAPIWebsocketParams, FastAPIWebsocketTransport, read_handshake
from phonewire.audio.vad import SileroVADAnalyzer
from phonewire.frames import LLMRunFrame
from phonewire.pipeline import Pipeline, PipelineParams, PipelineRunner, PipelineTask
from phonewire.processors.aggregators.llm_context import LLMContext
from phonewire.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from phonewire.services.openai import OpenAILLMService, OpenAISTTService, OpenAITTSService
from phonewire.telephony.documents import twiml_connect_stream
from phonewire.transports import RawWebSocketMiddleware

SYSTEM = (
    "You are a friendly assistant on a phone call. Your words are spoken aloud: answer in one or two"
    " short sentences, with no lists or special characters."
)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_time",
            "description": "The current date and time where the caller is.",
            "parameters": {"type": "object", "properties": {}},
        },
    }
]


async def get_current_time(params):  # a tool: the LLM calls it, the reply uses the result
    await params.result_callback({"now": datetime.datetime.now().strftime("%A %H:%M")})


async def run_bot(transport: FastAPIWebsocketTransport) -> None:
    env = os.environ.get
    stt = OpenAISTTService(model=env("OPENAI_STT_MODEL", "gpt-4o-transcribe"))
    llm = OpenAILLMService(model=env("OPENAI_LLM_MODEL", "gpt-4.1-mini"))
    llm.register_function("get_current_time", get_current_time)
    tts = OpenAITTSService(model=env("OPENAI_TTS_MODEL", "gpt-4o-mini-tts"), voice=env("OPENAI_TTS_VOICE", "alloy"))

    context = LLMContext([{"role": "system", "content": SYSTEM}], tools=TOOLS)
    aggregators = LLMContextAggregatorPair(context)
    pipeline = Pipeline(
        [transport.input(), stt, aggregators.user(), llm, tts, transport.output(), aggregators.assistant()]
    )
    task = PipelineTask(pipeline, params=PipelineParams(enable_metrics=True, enable_usage_metrics=True))

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport, websocket):
        context.add_message({"role": "user", "content": "Greet the caller and ask how you can help."})
        await task.queue_frames([LLMRunFrame()])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport, websocket):
        await task.cancel()

    await PipelineRunner(handle_sigint=False, force_gc=True).run(task)


app = FastAPI()
app.add_middleware(RawWebSocketMiddleware)


@app.post("/twiml")
async def twiml(request: Request) -> Response:
    stream_url = f"wss://{request.headers['host']}/ws"
    return Response(twiml_connect_stream(stream_url), media_type="application/xml")


@app.websocket("/ws")
async def media_stream(websocket: WebSocket) -> None:
    await websocket.accept()
    handshake = await read_handshake(websocket, providers=["twilio"], timeout=10)
    params = FastAPIWebsocketParams(
        audio_in_enabled=True,
        audio_out_enabled=True,
        serializer=handshake.serializer,
        vad_analyzer=SileroVADAnalyzer(),  # turns and barge-in, in the transport
    )
    await run_bot(FastAPIWebsocketTransport(websocket, params, handshake=handshake))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, ws="websockets-sansio", ws_per_message_deflate=False)
