"""Turn-taking on the test set: phonewire's default vs a silence timer vs Smart Turn alone.

Each configuration is one cascaded agent (Silero VAD, ``OpenAISTTService`` ->
``LLMContextAggregatorPair`` -> ``OpenAILLMService`` -> ``OpenAITTSService``) served by
``create_app`` on a real uvicorn server and called by the real-time call simulator (Twilio,
8 kHz μ-law), against a ``FakeOpenAIServer`` at fixed latencies. The caller says every utterance
of ``tests/fixtures/turns`` (espeak-ng, with mid-sentence pauses) and waits for the reply. The
fake STT returns the manifest's text for the audio each request carries (``turnset.py``).

Configurations:

* ``phonewire_default``: ``UserTurnStrategies()`` (Smart Turn + transcript hints, 1.5 s bound),
  VAD ``stop_secs=0.2``;
* ``smart_turn_only``: ``TurnAnalyzerUserTurnStopStrategy(use_transcript=False,
  max_silence_secs=3.0)`` - Pipecat's behaviour - VAD ``stop_secs=0.2``;
* ``silence_timer``: no strategies, phonewire's previous default (VAD ``stop_secs=0.8``, then the
  transcript rules).

Per utterance: **response** (handset: end of the caller's audible speech -> first audible bot
audio), and **cut-offs**: LLM runs before the utterance was over (a paused utterance answered
at a pause). Also the CPU of each Smart Turn inference (worker ``thread_time``) and of the
whole server process per call-minute (``resource.getrusage``). Run:
``.venv/bin/python benchmarks/bench_turn_taking.py`` (~4 min; ``--quick``: 4 utterances, default
config only, not saved). Writes ``benchmarks/results/turn_taking.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import platform
import resource
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "turns"))

from turnset import TurnSetTranscriber, Utterance, load  # noqa: E402

from phonewire.audio.turn.smart_turn import LocalSmartTurnAnalyzerV3, SmartTurnModel, SmartTurnRunner  # noqa: E402
from phonewire.audio.turn.smart_turn.features import smart_turn_features  # noqa: E402
from phonewire.frames import TTSSpeakFrame  # noqa: E402
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask  # noqa: E402
from phonewire.processors.aggregators import LLMContext, LLMContextAggregatorPair, LLMUserAggregatorParams  # noqa: E402
from phonewire.server import ServerConfig, create_app  # noqa: E402
from phonewire.services.openai import OpenAILLMService, OpenAISTTService, OpenAITTSService  # noqa: E402
from phonewire.testing import HangUp, Say, Step, WaitForBotReply, simulate_call  # noqa: E402
from phonewire.testing.fakes import ChatLatency, FakeOpenAIServer, SpeechLatency  # noqa: E402
from phonewire.turns import (  # noqa: E402
    TURN_ANALYZER_VAD_PARAMS,
    TurnAnalyzerUserTurnStopStrategy,
    UserTurnStrategies,
)

#: Silero's CPU per 32 ms window under load, from docs/vad.md (~180 us unbatched).
VAD_WINDOW_CPU_S = 180e-6
RESULTS = ROOT / "benchmarks" / "results" / "turn_taking.json"
REPLY = "Okay."
logger = logging.getLogger("bench.turns")


@dataclass(frozen=True, slots=True)
class Latencies:
    stt_s: float = 0.080
    llm_first_token_s: float = 0.100
    tts_first_byte_s: float = 0.060


def strategies_for(config: str) -> tuple[UserTurnStrategies | None, bool]:
    """(strategies, wants a 0.2 s VAD stop) for a configuration name."""
    if config == "phonewire_default":
        return UserTurnStrategies(), True
    if config == "smart_turn_only":
        stop = TurnAnalyzerUserTurnStopStrategy(
            turn_analyzer=LocalSmartTurnAnalyzerV3(), use_transcript=False, max_silence_secs=3.0
        )
        return UserTurnStrategies(stop=[stop]), True
    if config == "silence_timer":
        return None, False
    raise ValueError(config)


def agent_app(fake: FakeOpenAIServer, config: str, bots: list[Any]) -> Any:
    async def bot(transport: Any, info: Any) -> None:
        strategies, quick_vad = strategies_for(config)
        if quick_vad:
            transport.params.vad_analyzer.set_params(TURN_ANALYZER_VAD_PARAMS)
        stt = OpenAISTTService(api_key="bench-key", base_url=fake.base_url, model="whisper-1")
        llm = OpenAILLMService(api_key="bench-key", base_url=fake.base_url, model="gpt-4o-mini")
        tts = OpenAITTSService(api_key="bench-key", base_url=fake.base_url, model="tts-1")
        context = LLMContext([{"role": "system", "content": "You are a helpful phone agent."}])
        pair = LLMContextAggregatorPair(context, user_params=LLMUserAggregatorParams(user_turn_strategies=strategies))
        bots.append((transport, context, pair.user(), stt))
        task = PipelineTask(
            Pipeline([transport.input(), stt, pair.user(), llm, tts, transport.output(), pair.assistant()])
        )
        await task.queue_frame(TTSSpeakFrame(text="Hi."))
        await PipelineRunner(handle_sigint=False, handle_sigterm=False).run(task)

    return create_app(bot, ServerConfig(vad="silero", stream_scheme="ws", freeze_gc=False))


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, ws="websockets-sansio", ws_per_message_deflate=False, lifespan="off",
        log_level="warning", loop="asyncio", timeout_graceful_shutdown=2,
    )  # fmt: skip
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.get_running_loop().create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110  (uvicorn exposes only a flag)
            await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task


@dataclass
class Current(Step):
    """Tells the scripted transcriber which utterance the caller is about to say."""

    transcriber: Any = None
    name: str = ""

    def run(self, caller: Any) -> Iterator[Any]:
        self.transcriber.current = self.name
        return iter(())

    def describe(self) -> str:
        return f"(utterance {self.name})"


def caller_script(utterances: list[Utterance], transcriber: TurnSetTranscriber) -> list[Step]:
    script: list[Step] = [WaitForBotReply(timeout=10)]
    for u in utterances:
        script += [Current(transcriber=transcriber, name=u.name), Say.from_wav(u.path, label=u.name),
                   WaitForBotReply(timeout=10)]  # fmt: skip
    return [*script, HangUp()]


def run_config(config: str, utterances: list[Utterance], latencies: Latencies) -> dict[str, Any]:
    """One call through every utterance; per-utterance response and cut-offs, and CPU."""
    transcriber = TurnSetTranscriber()
    bots: list[Any] = []
    with FakeOpenAIServer(
        chat_responder=lambda request: REPLY,
        transcription_responder=transcriber.responder,
        chat_latency=ChatLatency(first_token_s=latencies.llm_first_token_s),
        speech_latency=SpeechLatency(first_byte_s=latencies.tts_first_byte_s),
        transcription_latency_s=latencies.stt_s,
    ) as fake:

        async def main() -> Any:
            async with serve(agent_app(fake, config, bots)) as hostport:
                return await simulate_call(
                    f"ws://{hostport}/ws", script=caller_script(utterances, transcriber), max_duration_s=240
                )

        runner = SmartTurnRunner.shared()
        before_inf, before_cpu = runner.stats.inferences, runner.stats.cpu_ms_total
        usage0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        report = asyncio.run(main())
        usage1, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - wall0
        chats = [r for r in fake.requests if r.endpoint == "chat"]
    _, context, user, stt = bots[-1]
    said = [m["content"] for m in context.messages if m["role"] == "user"]
    rows = []
    for u, turn in zip(utterances, report.turns, strict=False):
        rows.append({"utterance": u.name, "paused": u.paused, "response_ms": turn.response_latency_ms})
    expected = [u.transcript for u in utterances]
    inferences = runner.stats.inferences - before_inf
    cpu_s = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    return {
        "config": config,
        "rows": rows,
        "user_messages": said,
        "expected_messages": expected,
        "cut_offs": cut_offs(said, expected),
        "text_mismatches": text_mismatches(said, expected),
        "llm_runs": len(chats),
        "errors": [str(e) for e in report.errors],
        "verdicts": [round(v.probability, 3) for v in user.verdicts],
        "stt_requests": len([r for r in fake.requests if r.endpoint == "transcriptions"]),
        "speculative": {
            "submitted": stt.speculative_submitted,
            "used": stt.speculative_used,
            "dropped": stt.speculative_dropped,
            "segments": stt.segments_submitted,
        },  # fmt: skip
        "smart_turn": {
            "inferences": inferences,
            "cpu_ms_per_inference": (runner.stats.cpu_ms_total - before_cpu) / inferences if inferences else None,
        },
        "process_cpu_s": cpu_s,
        "call_s": wall,
    }


def cut_offs(said: list[str], expected: list[str]) -> int:
    """LLM runs on part of an utterance: user messages beyond one per utterance (each LLM run
    at a pause adds one; the rest of the utterance then becomes another)."""
    return max(0, len(said) - len(expected))


def text_mismatches(said: list[str], expected: list[str]) -> int:
    """Messages whose text differs from the manifest's (the scripted STT's word timing, not the
    turn-taking, when there are no cut-offs)."""
    return sum(1 for s, e in zip(said, expected, strict=False) if s != e) if len(said) == len(expected) else -1


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    values = [r["response_ms"] for r in result["rows"] if r["response_ms"] is not None]
    return {
        "median_ms": statistics.median(values) if values else None,
        "p95_ms": pct(values, 0.95) if values else None,
        "max_ms": max(values) if values else None,
        "answered": len(values),
        "cut_offs": result["cut_offs"],
    }


def inference_cost(n: int = 20) -> dict[str, Any]:
    """CPU per inference on one thread: features, model at batch 1, model at batch 4."""
    model = SmartTurnModel.shared()
    rng = np.random.default_rng(1)
    audio = (rng.normal(0, 0.1, 4 * 16000)).astype(np.float32)

    def cpu(fn: Callable[[], Any]) -> float:
        fn()
        t0 = time.thread_time()
        for _ in range(n):
            fn()
        return 1000 * (time.thread_time() - t0) / n

    features = smart_turn_features(audio)
    return {
        "features_ms": cpu(lambda: smart_turn_features(audio)),
        "model_batch1_ms": cpu(lambda: model.predict(features[None])),
        "model_batch4_ms": cpu(lambda: model.predict(np.stack([features] * 4))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--configs", default="phonewire_default,smart_turn_only,silence_timer")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    utterances = load()
    configs = args.configs.split(",")
    if args.quick:
        utterances, configs = (
            [u for u in utterances if u.name in ("phone_number", "hesitation", "cancel", "yes")],
            ["phonewire_default"],
        )
    latencies = Latencies()
    SmartTurnModel.shared()
    fakes_ms = {k: 1000 * v for k, v in asdict(latencies).items()}
    out: dict[str, Any] = {"benchmark": "turn_taking", "fake_latencies_ms": fakes_ms, "utterances": len(utterances),
                           "configs": {}}  # fmt: skip
    for config in configs:
        result = run_config(config, utterances, latencies)
        result["summary"] = summarize(result)
        out["configs"][config] = result
        logger.warning("%s: %s", config, json.dumps(result["summary"]))
    cost = inference_cost()
    out["inference_cost"] = cost
    default = out["configs"].get("phonewire_default")
    if default:
        call_min = default["call_s"] / 60
        per_min = default["process_cpu_s"] / call_min
        st = default["smart_turn"]
        st_per_min = st["inferences"] * (st["cpu_ms_per_inference"] or 0) / 1000 / call_min
        vad_per_min = VAD_WINDOW_CPU_S * (1 / 0.032) * 60
        out["capacity"] = {
            "process_cpu_s_per_call_minute": per_min,
            "process_note": "server + simulator + fakes in one process: an upper bound on one call's CPU",
            "calls_per_core_lower_bound": 60 / per_min if per_min else None,
            "smart_turn_inferences_per_call_minute": st["inferences"] / call_min,
            "smart_turn_cpu_s_per_call_minute": st_per_min,
            "vad_cpu_s_per_call_minute": vad_per_min,
            "vad_note": f"{VAD_WINDOW_CPU_S * 1e6:.0f} us per 32 ms window (docs/vad.md), 1875 windows a minute",
            "calls_per_core_models_only": 60 / (st_per_min + vad_per_min),
        }
    out["machine"] = {"python": platform.python_version(), "machine": platform.machine(), "cpus": _cpus()}
    logger.warning("inference cost: %s", json.dumps(cost))
    if not args.quick:
        args.out.write_text(json.dumps(out, indent=1) + "\n")


def _cpus() -> int | None:
    import os

    return os.cpu_count()


if __name__ == "__main__":
    main()
