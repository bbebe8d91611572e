"""Pipecat's echo bot: pipecat-ai 1.14.0, FastAPIWebsocketTransport + TwilioFrameSerializer.

Run with Pipecat's own virtual environment (``run_load.py`` creates it under
``.bench-cache/pipecat-venv``)::

    .bench-cache/pipecat-venv/bin/python benchmarks/pipecat/echo_bot.py --port 8766 --vad silero

Written the way pipecat's Twilio examples are: ``parse_telephony_websocket`` reads the
handshake, then per call a ``TwilioFrameSerializer`` and a pipeline task with default settings
(``PipelineWorker``, 1.3's name for ``PipelineTask``) run by a ``WorkerRunner`` (formerly
``PipelineRunner``). Differences, all in Pipecat's favour or needed for a like-for-like
workload:

* pipeline rates 8 kHz in and out (Pipecat's defaults, 16/24 kHz, add ~250 ms of echo
  latency through bursty resampling; see /work/shared/reference/pipecat-measured.md);
* ``audio_out_10ms_chunks=2``: 20 ms packets out, like the caller's (default 4 = 40 ms);
* ``auto_hang_up=False`` (no Twilio credentials in a benchmark);
* loguru at WARNING (its default DEBUG writes several lines per call event);
* the same uvicorn stack as phonewire: websockets-sansio, uvloop, httptools, no deflate.

VAD ("silero"): in 1.14 VAD left the transport (``vad_analyzer`` in the transport params is
ignored), so it runs as a ``VADProcessor(SileroVADAnalyzer())`` per call, and a small
processor turns ``VADUserStartedSpeakingFrame`` into ``broadcast_interruption()`` — what
``LLMUserAggregator``'s default ``VADUserTurnStartStrategy`` does — so barge-in clears the
bot's audio as in a real bot.
"""

# No ``from __future__ import annotations``: FastAPI must resolve the route's WebSocket
# annotation, which is imported inside build_app.

import argparse
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "load"))

import probe


def build_app(vad: str, *, probe_on: bool = True) -> Any:
    from fastapi import FastAPI, WebSocket
    from fastapi.responses import JSONResponse
    from pipecat.frames.frames import (
        Frame,
        InputAudioRawFrame,
        OutputAudioRawFrame,
        VADUserStartedSpeakingFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.runner.utils import parse_telephony_websocket
    from pipecat.serializers.twilio import TwilioFrameSerializer
    from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
    from pipecat.workers.runner import WorkerRunner

    probe.install(probe_on)
    state = {"active": 0}

    class Echo(FrameProcessor):
        def __init__(self, conn: Any) -> None:
            super().__init__()
            self._conn = conn

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, InputAudioRawFrame):
                probe.on_echo(self._conn, frame.audio)
                await self.push_frame(
                    OutputAudioRawFrame(audio=frame.audio, sample_rate=frame.sample_rate, num_channels=1)
                )
            else:
                await self.push_frame(frame, direction)

    class InterruptOnSpeech(FrameProcessor):
        """What LLMUserAggregator's VADUserTurnStartStrategy does with interruptions on."""

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            await self.push_frame(frame, direction)
            if isinstance(frame, VADUserStartedSpeakingFrame):
                await self.broadcast_interruption()

    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "active_calls": state["active"]})

    @app.get("/bench/stats")
    async def bench_stats(reset: int = 0) -> JSONResponse:
        probe.ensure_loop_watch()
        if reset:
            probe.PROBE.reset()
            return JSONResponse({"reset": True, "active_calls": state["active"]})
        result: dict[str, Any] = probe.PROBE.summary()
        result["active_calls"] = state["active"]
        result["framework"] = "pipecat"
        return JSONResponse(result)

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
        probe.ensure_loop_watch()
        conn = websocket.scope.get("pw.conn") if probe_on else None
        processors: list[Any] = [transport.input()]
        if vad == "silero":
            from pipecat.audio.vad.silero import SileroVADAnalyzer
            from pipecat.processors.audio.vad_processor import VADProcessor

            processors += [VADProcessor(vad_analyzer=SileroVADAnalyzer()), InterruptOnSpeech()]
        processors += [Echo(conn), transport.output()]
        task = PipelineWorker(
            Pipeline(processors),
            params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        )

        @transport.event_handler("on_client_disconnected")
        async def on_client_disconnected(transport: Any, client: Any) -> None:
            await task.cancel()

        state["active"] += 1
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
    parser.add_argument("--vad", choices=["none", "silero"], default="none")
    parser.add_argument("--no-probe", action="store_true")
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")

    import uvicorn

    app = build_app(args.vad, probe_on=not args.no_probe)
    uvicorn.run(
        app,
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
