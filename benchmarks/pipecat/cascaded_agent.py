"""Pipecat's cascaded agent: pipecat-ai 1.14.0's own Deepgram, OpenAI and Cartesia services.

Run with Pipecat's virtual environment (``bench_cascaded_agent.py`` creates it under
``.bench-cache/pipecat-venv``; it needs ``pipecat-ai[websocket,deepgram,cartesia,openai,silero]``)::

    DEEPGRAM_BASE_URL=ws://127.0.0.1:P1 OPENAI_BASE_URL=http://127.0.0.1:P2/v1 \\
    CARTESIA_BASE_URL=ws://127.0.0.1:P3 .bench-cache/pipecat-venv/bin/python \\
    benchmarks/pipecat/cascaded_agent.py --port 8766

Pipecat's twilio-chatbot, as its examples write it: ``parse_telephony_websocket``, a
``TwilioFrameSerializer`` (``auto_hang_up=False``: no Twilio credentials in a benchmark),
``FastAPIWebsocketTransport``, ``DeepgramSTTService`` -> ``LLMContextAggregatorPair`` (Silero VAD
in the user aggregator, 1.14's place for it) -> ``OpenAILLMService`` -> ``CartesiaTTSService``, the
greeting from the LLM at ``on_client_connected``, run by a ``PipelineWorker`` in a ``WorkerRunner``.
Every service takes a local URL (read from the installed source):

* ``DeepgramSTTService(base_url="ws://127.0.0.1:P")``: pipecat derives the SDK's
  ``DeepgramClientEnvironment`` (``production``=ws, ``base``=http) from it;
* ``OpenAILLMService(base_url="http://127.0.0.1:P/v1")``: the ``openai`` client's base URL;
* ``CartesiaTTSService(url="ws://127.0.0.1:P/tts/websocket")``: the full WebSocket URL.

Settings, all for a like-for-like workload with phonewire's agent:

* pipeline rates 8 kHz in and out (Pipecat's 16/24 kHz defaults add resampling on a phone line),
  so Deepgram gets ``linear16``/8000 and Cartesia is asked for ``pcm_s16le``/8000: pipecat's
  services take PCM and the serializer does the μ-law (pipecat has no μ-law passthrough);
* ``audio_out_10ms_chunks=2``: 20 ms packets out, like the caller's;
* the turn decision equal to phonewire's: ``VADParams(stop_secs=0.2)`` (pipecat's default) plus
  ``SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.6)``, i.e. 0.8 s of silence ends the
  turn, as phonewire's VAD ``stop_secs=0.8`` does. Pipecat's default stop strategy is Smart Turn
  v3 (a second ONNX model per turn), which phonewire's benchmarked agent does not run either;
* loguru at WARNING; the same uvicorn stack (websockets-sansio, uvloop, httptools, no deflate).
"""

# No ``from __future__ import annotations``: FastAPI must resolve the route's WebSocket
# annotation, which is imported inside build_app.

import argparse
import os
import sys
from typing import Any

SYSTEM = "You are a helpful phone agent. Answer in one short sentence."


def build_app() -> Any:
    from fastapi import FastAPI, WebSocket
    from fastapi.responses import JSONResponse
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.audio.vad.vad_analyzer import VADParams
    from pipecat.frames.frames import LLMRunFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMContextAggregatorPair,
        LLMUserAggregatorParams,
    )
    from pipecat.runner.utils import parse_telephony_websocket
    from pipecat.serializers.twilio import TwilioFrameSerializer
    from pipecat.services.cartesia.tts import CartesiaTTSService
    from pipecat.services.deepgram.stt import DeepgramSTTService
    from pipecat.services.openai.llm import OpenAILLMService
    from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
    from pipecat.turns.user_stop.speech_timeout_user_turn_stop_strategy import SpeechTimeoutUserTurnStopStrategy
    from pipecat.turns.user_turn_strategies import UserTurnStrategies
    from pipecat.workers.runner import WorkerRunner

    env = os.environ
    state = {"active": 0, "calls": 0}
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "active_calls": state["active"]})

    @app.get("/bench/stats")
    async def bench_stats(reset: int = 0) -> JSONResponse:
        return JSONResponse({"framework": "pipecat", "active_calls": state["active"], "calls": state["calls"]})

    @app.websocket("/ws")
    async def media_stream(websocket: WebSocket) -> None:
        await websocket.accept()
        _, call_data = await parse_telephony_websocket(websocket)
        serializer = TwilioFrameSerializer(
            stream_sid=call_data["stream_id"],
            call_sid=call_data["call_id"],
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
        transport = FastAPIWebsocketTransport(
            websocket=websocket,
            params=FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                audio_out_10ms_chunks=2,
                serializer=serializer,
            ),
        )
        stt = DeepgramSTTService(api_key=env["DEEPGRAM_API_KEY"], base_url=env["DEEPGRAM_BASE_URL"])
        llm = OpenAILLMService(
            api_key=env["OPENAI_API_KEY"],
            base_url=env["OPENAI_BASE_URL"],
            settings=OpenAILLMService.Settings(model="gpt-4o-mini"),
        )
        tts = CartesiaTTSService(
            api_key=env["CARTESIA_API_KEY"],
            url=env["CARTESIA_BASE_URL"].rstrip("/") + "/tts/websocket",
            settings=CartesiaTTSService.Settings(voice="bench-voice"),
        )
        context = LLMContext([{"role": "system", "content": SYSTEM}])
        user_aggregator, assistant_aggregator = LLMContextAggregatorPair(
            context,
            user_params=LLMUserAggregatorParams(
                vad_analyzer=SileroVADAnalyzer(params=VADParams(stop_secs=0.2)),
                user_turn_strategies=UserTurnStrategies(
                    stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.6)]
                ),
            ),
        )
        pipeline = Pipeline(
            [transport.input(), stt, user_aggregator, llm, tts, transport.output(), assistant_aggregator]
        )
        task = PipelineWorker(
            pipeline,
            params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        )

        @transport.event_handler("on_client_connected")
        async def on_client_connected(transport: Any, client: Any) -> None:
            context.add_message({"role": "user", "content": "Greet the caller."})
            await task.queue_frames([LLMRunFrame()])

        @transport.event_handler("on_client_disconnected")
        async def on_client_disconnected(transport: Any, client: Any) -> None:
            await task.cancel()

        state["active"] += 1
        state["calls"] += 1
        try:
            runner = WorkerRunner(handle_sigint=False)
            await runner.add_workers(task)
            await runner.run()
        finally:
            state["active"] -= 1

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")

    import uvicorn

    uvicorn.run(
        build_app(),
        host="127.0.0.1",
        port=args.port,
        ws="websockets-sansio",
        loop="uvloop",
        http="httptools",
        ws_per_message_deflate=False,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
