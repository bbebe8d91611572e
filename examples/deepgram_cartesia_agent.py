"""A phone agent on Deepgram + an OpenAI-compatible LLM + Cartesia: Pipecat's twilio-chatbot, ported.

    python examples/deepgram_cartesia_agent.py --host 0.0.0.0 --port 8000

Serves Twilio Media Streams on ``/ws`` (and TwiML on ``POST /twiml`` pointing at it). Speech to
text is Deepgram's live WebSocket (``DEEPGRAM_API_KEY``), the LLM any OpenAI-compatible chat
endpoint (``OPENAI_API_KEY``, model ``OPENAI_LLM_MODEL``), speech Cartesia's WebSocket
(``CARTESIA_API_KEY``, voice ``CARTESIA_VOICE_ID``). Every endpoint can be replaced by
environment, a base in place of the vendor's host: ``DEEPGRAM_BASE_URL`` (``ws://127.0.0.1:PORT``
or ``wss://...``), ``CARTESIA_BASE_URL`` (likewise), ``OPENAI_BASE_URL`` (``http://.../v1``).

The call's μ-law is never transcoded: the input runs in wire mode (the line's bytes go to Deepgram
as ``mulaw``/8000, decoded only for the VAD) and Cartesia answers in ``pcm_mulaw`` at 8 kHz, which
goes to the phone as it came. Needs ``pip install "phonewire[openai]"``.
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
from phonewire.services.cartesia import CartesiaTTSService
from phonewire.services.deepgram import DeepgramSTTService
from phonewire.services.openai import OpenAILLMService
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
    # keys from DEEPGRAM_API_KEY / CARTESIA_API_KEY / OPENAI_API_KEY, endpoints from the *_BASE_URLs
    stt = DeepgramSTTService(model=env("DEEPGRAM_MODEL", "nova-3"))
    llm = OpenAILLMService(model=env("OPENAI_LLM_MODEL", "gpt-4.1-mini"))
    llm.register_function("get_current_time", get_current_time)
    tts = CartesiaTTSService(voice_id=env("CARTESIA_VOICE_ID", "71a7ad14-091c-4e8e-a314-022ece01c121"))

    # wire mode: the caller's μ-law goes to Deepgram untouched (False on a line that is not G.711)
    transport.input().use_wire_audio()

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
