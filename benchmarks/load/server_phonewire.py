"""The phonewire echo server under test (benchmark only; started by ``run_load.py``).

``create_app`` with the stock ``EchoProcessor`` (subclassed only to call the latency probe),
one uvicorn worker with the recommended stack: websockets-sansio, uvloop, httptools, no
permessage-deflate. Extra routes for the harness: ``GET /bench/stats`` (probe latencies and
summed transport counters since the last ``?reset=1``).

VAD modes: ``none``; ``silero`` (as shipped: one shared model, windows of all calls batched
into one inference by ``transports/vad_batcher.py``); ``silero-nobatch`` (the same with
``vad_batching=False``: one inference per 32 ms window per call, to show what batching saves).

    python benchmarks/load/server_phonewire.py --port 8765 --vad silero
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import probe


def build_app(vad: str, *, probe_on: bool = True) -> Any:
    from fastapi.responses import JSONResponse

    from phonewire.frames import Frame, FrameDirection, InputAudioRawFrame
    from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
    from phonewire.processors import EchoProcessor
    from phonewire.server import ServerConfig, create_app

    probe.install(probe_on)
    active: set[Any] = set()
    finished: list[Any] = []

    class ProbedEcho(EchoProcessor):
        def __init__(self, conn: Any) -> None:
            super().__init__()
            self._conn = conn

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            if isinstance(frame, InputAudioRawFrame):
                probe.on_echo(self._conn, frame.audio)
            await super().process_frame(frame, direction)

    async def bot(transport: Any, call: Any) -> None:
        probe.ensure_loop_watch()
        conn = transport.websocket.scope.get("pw.conn") if probe_on else None
        echo = ProbedEcho(conn) if conn is not None else EchoProcessor()
        task = PipelineTask(Pipeline([transport.input(), echo, transport.output()]))
        active.add(transport)
        try:
            await PipelineRunner(handle_sigint=False).run(task)
        finally:
            active.discard(transport)
            finished.append(transport.stats)

    config_vad = {"none": None, "silero": "silero", "silero-nobatch": "silero"}[vad]
    transport_params = {"vad_batching": False} if vad == "silero-nobatch" else {}
    config = ServerConfig(vad=config_vad, max_calls=4000, stream_secret=None, transport_params=transport_params)
    app = create_app(bot, config)

    baseline: dict[str, float] = {}

    def counters() -> dict[str, float]:
        stats = [t.stats for t in active] + finished
        keys = ("underruns", "interruptions", "clears_sent", "dropped_audio_ms", "internal_errors", "send_failures")
        out = {k: float(sum(getattr(s, k) for s in stats)) for k in keys}
        out["protocol_errors"] = float(sum(s.protocol_error_count for s in stats))
        return out

    @app.get("/bench/stats")
    async def bench_stats(reset: int = 0) -> JSONResponse:
        """Since the last reset: probe latencies, loop stalls, GC pauses, transport counters."""
        probe.ensure_loop_watch()
        now = counters()
        if reset:
            probe.PROBE.reset()
            baseline.clear()
            baseline.update(now)
            return JSONResponse({"reset": True, "active_calls": len(active)})
        result: dict[str, Any] = probe.PROBE.summary()
        result["transport"] = {k: v - baseline.get(k, 0.0) for k, v in now.items()}
        result["active_calls"] = len(active)
        result["framework"] = "phonewire"
        return JSONResponse(result)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--vad", choices=["none", "silero", "silero-nobatch"], default="none")
    parser.add_argument("--no-probe", action="store_true", help="no latency probes (pure CPU numbers)")
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after start-up (see docs)")
    parser.add_argument(
        "--observability",
        choices=["default", "off", "on"],
        default="default",
        help="off: no call hooks (no metrics); on: what `phonewire serve` does (multiprocess metrics) plus "
        "JSON logs at INFO; default: in-process metrics, logs at ERROR (bench_observability.py)",
    )
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    if args.observability == "on":
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-metrics-")  # before the import
        from phonewire.server.json_logs import configure_logging

        configure_logging("info", "json")
        logging.getLogger("uvicorn").setLevel(logging.WARNING)
    else:
        logging.basicConfig(level=logging.WARNING)
        logging.getLogger("phonewire").setLevel(logging.ERROR)  # "no stream secret" and per-call lines

    import uvicorn

    app = build_app(args.vad, probe_on=not args.no_probe)
    if args.observability == "off":
        app.state.calls.hooks.clear()
    if args.gc_freeze:
        import gc

        import uvicorn.protocols.http.httptools_impl
        import uvicorn.protocols.websockets.websockets_sansio_impl

        gc.collect()
        gc.freeze()
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
