"""The phonewire cascaded agent under test (benchmark only; started by ``bench_cascaded_agent.py``).

examples/deepgram_cartesia_agent.py's pipeline on ``create_app``: Silero VAD in the transport
(``ServerConfig(vad="silero")``, one shared model, batched across calls), the input in wire mode
(the caller's μ-law goes to Deepgram untouched), ``DeepgramSTTService`` -> ``LLMContextAggregatorPair``
-> ``OpenAILLMService`` -> ``CartesiaTTSService`` (``pcm_mulaw`` at 8 kHz on the μ-law line), the
greeting from the LLM at the start. Endpoints and keys from ``DEEPGRAM_BASE_URL``,
``OPENAI_BASE_URL``, ``CARTESIA_BASE_URL`` and the ``*_API_KEY`` variables (the fakes). The turn
ends at the VAD's stop (``stop_secs`` 0.8 s, phonewire's default). One uvicorn worker, the stack
of the echo benchmark (websockets-sansio, uvloop, httptools, no deflate).

``GET /bench/stats``: transport counters (underruns...) and the median of each turn stage of the
calls since the last ``?reset=1``.

    DEEPGRAM_BASE_URL=... python benchmarks/load/server_cascaded_agent.py --port 8765
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
from typing import Any

SYSTEM = "You are a helpful phone agent. Answer in one short sentence."


def build_app() -> Any:
    from fastapi.responses import JSONResponse

    from phonewire.frames import LLMRunFrame
    from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
    from phonewire.processors.aggregators import LLMContext, LLMContextAggregatorPair
    from phonewire.server import ServerConfig, create_app
    from phonewire.services.cartesia import CartesiaTTSService
    from phonewire.services.deepgram import DeepgramSTTService
    from phonewire.services.openai import OpenAILLMService

    active: set[Any] = set()
    finished: list[Any] = []
    wire_modes: list[bool] = []

    async def bot(transport: Any, call: Any) -> None:
        wire_modes.append(bool(transport.input().use_wire_audio()))
        stt = DeepgramSTTService()  # DEEPGRAM_API_KEY, DEEPGRAM_BASE_URL
        llm = OpenAILLMService(model="gpt-4o-mini")  # OPENAI_API_KEY, OPENAI_BASE_URL
        tts = CartesiaTTSService(voice_id="bench-voice")  # CARTESIA_API_KEY, CARTESIA_BASE_URL
        context = LLMContext([{"role": "system", "content": SYSTEM}])
        pair = LLMContextAggregatorPair(context)
        task = PipelineTask(
            Pipeline([transport.input(), stt, pair.user(), llm, tts, transport.output(), pair.assistant()])
        )
        context.add_message({"role": "user", "content": "Greet the caller."})
        await task.queue_frames([LLMRunFrame()])
        active.add(transport)
        try:
            await PipelineRunner(handle_sigint=False, handle_sigterm=False).run(task)
        finally:
            active.discard(transport)
            finished.append(transport.stats)

    config = ServerConfig(vad="silero", max_calls=4000, stream_secret=None)
    app = create_app(bot, config)
    since: dict[str, int] = {"finished": 0}
    baseline: dict[int, int] = {}  # id(stats) -> turns already counted

    def counters(stats: list[Any]) -> dict[str, float]:
        keys = ("underruns", "interruptions", "clears_sent", "dropped_audio_ms", "internal_errors", "send_failures")
        return {k: float(sum(getattr(s, k, 0) for s in stats)) for k in keys}

    @app.get("/bench/stats")
    async def bench_stats(reset: int = 0) -> JSONResponse:
        stats = [t.stats for t in active] + finished[since["finished"] :]
        if reset:
            since["finished"] = len(finished)
            baseline.clear()
            baseline.update({id(t.stats): len(t.stats.turns) for t in active})
            base = counters([t.stats for t in active])
            app.state.bench_base = base
            return JSONResponse({"reset": True, "active_calls": len(active)})
        now = counters(stats)
        base = getattr(app.state, "bench_base", {})
        stages: dict[str, list[float]] = {}
        for s in stats:
            for turn in list(s.turns)[baseline.get(id(s), 0) :]:
                for name, at in turn.stages.items():
                    stages.setdefault(name, []).append(1000 * at)
        return JSONResponse({
            "framework": "phonewire",
            "active_calls": len(active),
            "wire_mode_calls": sum(wire_modes),
            "transport": {k: v - base.get(k, 0.0) for k, v in now.items()},
            "turn_stage_medians_ms": {k: round(statistics.median(v), 1) for k, v in sorted(stages.items())},
            "turn_stage_counts": {k: len(v) for k, v in sorted(stages.items())},
        })  # fmt: skip

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("phonewire").setLevel(logging.ERROR)  # "no stream secret" and per-call lines
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
