"""Agent turn latency: caller stops -> first bot audio heard, and how much of it is phonewire's.

A cascaded agent (Silero VAD, ``OpenAISTTService`` -> ``LLMContextAggregatorPair`` ->
``OpenAILLMService`` -> ``OpenAITTSService``) is served by ``create_app`` on a real uvicorn
server on 127.0.0.1 and called by the real-time call simulator (Twilio protocol), one call after
another. The services talk to a ``FakeOpenAIServer`` with fixed latencies. Each caller turn is a
built-in recording ("hello", then "thanks", alternately) followed by ``WaitForBotReply()``; the
fake transcribes it and answers with a short scripted reply ("Sure." / "Okay, one moment.").

Per turn:

* **response**: what the handset measured (simulator: end of the caller's audible speech ->
  first audible bot audio), beside the transport's own ``first_audio_heard`` (mark echoes);
* **VAD wait**: the ``vad_stop`` stage, the VAD's ``stop_secs`` of confirming silence;
* **the fakes' delays**: ``first_byte_at - arrived_at`` of the turn's transcription, chat (to the
  last chunk written before the first speech request went out) and first speech request, as the
  fake recorded them;
* **phonewire's own** = response - VAD wait - the fakes' delays (target <= 30 ms).

The stage breakdown comes from ``transport.stats.turns``. Everything runs in one process
(server, simulator, and the fake on its own thread), so "own" includes the simulator's share
of the CPU on a busy machine. Run: ``.venv/bin/python benchmarks/bench_agent_latency.py``
(~2.5 min; ``--quick`` for a ~30 s smoke run). Writes benchmarks/results/agent_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import uvicorn

from phonewire.frames import TTSSpeakFrame
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.processors.aggregators import LLMContext, LLMContextAggregatorPair
from phonewire.server import ServerConfig, create_app
from phonewire.services.openai import OpenAILLMService, OpenAISTTService, OpenAITTSService
from phonewire.testing import HangUp, Say, Step, WaitForBotReply, simulate_call
from phonewire.testing.fakes import ChatLatency, FakeOpenAIServer, RecordedRequest, SpeechLatency
from phonewire.testing.script import builtin_recording

RESULTS = Path(__file__).resolve().parent / "results" / "agent_latency.json"
GREETING = "Hi."
REPLIES = ("Sure.", "Okay, one moment.")
TRANSCRIPTS = ("I would like to know my order status.", "Thank you, that's all.")
OWN_TARGET_MS = 30.0
STAGE_ORDER = ("vad_stop", "transcript", "turn_end", "llm_first_token", "tts_first_byte", "first_audio_sent",
               "first_audio_heard")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Latencies:
    stt_s: float = 0.150
    llm_first_token_s: float = 0.250
    llm_per_token_s: float = 0.0
    tts_first_byte_s: float = 0.120


# --- the agent (what tests/conversation/agent_app.py builds, without the tool) -------------


def agent_app(fake: FakeOpenAIServer, transports: list[Any]) -> Any:
    async def bot(transport: Any, info: Any) -> None:
        transports.append(transport)
        stt = OpenAISTTService(api_key="bench-key", base_url=fake.base_url, model="whisper-1")
        llm = OpenAILLMService(api_key="bench-key", base_url=fake.base_url, model="gpt-4o-mini")
        tts = OpenAITTSService(api_key="bench-key", base_url=fake.base_url, model="tts-1")
        context = LLMContext([{"role": "system", "content": "You are a helpful phone agent."}])
        pair = LLMContextAggregatorPair(context)
        task = PipelineTask(
            Pipeline([transport.input(), stt, pair.user(), llm, tts, transport.output(), pair.assistant()])
        )
        await task.queue_frame(TTSSpeakFrame(text=GREETING))
        await PipelineRunner(handle_sigint=False, handle_sigterm=False).run(task)

    return create_app(bot, ServerConfig(vad="silero", stream_scheme="ws", freeze_gc=False))


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """``"127.0.0.1:PORT"`` while ``app`` is served by uvicorn in this event loop."""
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
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task


def reply_for(request: dict[str, Any]) -> str:
    """Alternate the two replies by the number of caller turns in the context."""
    users = sum(1 for m in request.get("messages", []) if m.get("role") == "user")
    return REPLIES[(users - 1) % len(REPLIES)]


def transcriber() -> Any:
    """The caller alternates the two recordings; so do the transcripts."""
    texts = itertools.cycle(TRANSCRIPTS)
    return lambda audio, form: next(texts)


def caller_script(turns: int) -> list[Step]:
    recordings = [builtin_recording("hello"), builtin_recording("thanks")]
    script: list[Step] = [WaitForBotReply(timeout=10)]
    for i in range(turns):
        script += [Say.from_wav(recordings[i % 2]), WaitForBotReply(timeout=10)]
    return [*script, HangUp()]


# --- one run --------------------------------------------------------------------------------


@dataclass(slots=True)
class CallRun:
    started_at: float
    ended_at: float
    transport: Any
    handset_ms: list[float | None]
    errors: list[str]


async def run_calls(fake: FakeOpenAIServer, calls: int, turns: int, warmup: bool) -> list[CallRun]:
    transports: list[Any] = []
    runs: list[CallRun] = []
    async with serve(agent_app(fake, transports)) as hostport:
        for n in range(calls + (1 if warmup else 0)):
            started = time.monotonic()
            report = await simulate_call(
                f"ws://{hostport}/ws", script=caller_script(1 if warmup and n == 0 else turns), max_duration_s=90
            )
            await asyncio.sleep(0.2)  # the bot's pipeline winds down after the hang-up
            if warmup and n == 0:
                continue
            runs.append(
                CallRun(started, time.monotonic(), transports[-1], [t.response_latency_ms for t in report.turns],
                        [str(e) for e in report.errors])
            )  # fmt: skip
    return runs


def _first_content_at(chat: RecordedRequest) -> float | None:
    for event, at in zip(chat.sse_events, chat.event_times, strict=False):
        with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
            if json.loads(event)["choices"][0]["delta"].get("content"):
                return at
    return None


def turn_rows(fake: FakeOpenAIServer, runs: Sequence[CallRun]) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per answered caller turn: stages, the fakes' delays, and phonewire's own share."""
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    requests = fake.requests
    for c, run in enumerate(runs):
        problems += [f"call {c}: {e}" for e in run.errors]
        records = list(run.transport.stats.turns)
        if len(records) != len(run.handset_ms):
            problems.append(f"call {c}: transport saw {len(records)} turns, the handset {len(run.handset_ms)}")
        for i, (record, handset) in enumerate(zip(records, run.handset_ms, strict=False)):
            start = record.caller_stopped_at
            end = records[i + 1].caller_stopped_at if i + 1 < len(records) else run.ended_at
            window = [r for r in requests if start <= r.arrived_at < end]
            stt = next((r for r in window if r.endpoint == "transcriptions"), None)
            chat = next((r for r in window if r.endpoint == "chat"), None)
            speech = next((r for r in window if r.endpoint == "speech" and chat and r.arrived_at > chat.arrived_at),
                          None)  # fmt: skip
            heard = record.stages.get("first_audio_heard")
            if None in (stt, chat, speech, handset, heard) or record.interrupted:
                problems.append(f"call {c} turn {i}: incomplete (stages {sorted(record.stages)}, handset {handset})")
                continue
            assert stt and chat and speech and handset is not None and heard is not None
            if None in (stt.first_byte_at, chat.first_byte_at, speech.first_byte_at):
                problems.append(f"call {c} turn {i}: a fake request has no first byte")
                continue
            first_token = _first_content_at(chat) or chat.first_byte_at
            # the chat stream up to the last chunk the fake had written when the TTS request went out
            used = max((t for t in chat.event_times if t <= speech.arrived_at), default=first_token)
            fakes = {
                "stt": stt.first_byte_at - stt.arrived_at,  # type: ignore[operator]
                "llm_first_token": first_token - chat.arrived_at,  # type: ignore[operator]
                "llm_to_tts_request": max(0.0, used - first_token),  # type: ignore[operator]
                "tts_first_byte": speech.first_byte_at - speech.arrived_at,  # type: ignore[operator]
            }
            fake_s = sum(fakes.values())
            vad_s = record.stages["vad_stop"]
            rows.append({
                "call": c,
                "turn": i,
                "response_ms": handset,
                "transport_heard_ms": 1000 * heard,
                "handset_minus_transport_ms": handset - 1000 * heard,
                "vad_wait_ms": 1000 * vad_s,
                "fakes_ms": {k: 1000 * v for k, v in fakes.items()},
                "fakes_total_ms": 1000 * fake_s,
                "own_ms": handset - 1000 * (vad_s + fake_s),
                "own_transport_ms": 1000 * (heard - vad_s - fake_s),
                "stages_ms": {k: 1000 * record.stages[k] for k in STAGE_ORDER if k in record.stages},
                "heard_source": record.heard_source,
            })  # fmt: skip
    return rows, problems


def steps(row: dict[str, Any]) -> dict[str, float] | None:
    """Each step between stages, and phonewire's own part of it (the step minus the fake's delay)."""
    s, f = row["stages_ms"], row["fakes_ms"]
    if any(k not in s for k in STAGE_ORDER):
        return None
    return {
        "stt (vad_stop -> transcript)": s["transcript"] - s["vad_stop"] - f["stt"],
        "aggregator (transcript -> turn_end)": s["turn_end"] - s["transcript"],
        "llm (turn_end -> llm_first_token)": s["llm_first_token"] - s["turn_end"] - f["llm_first_token"],
        "tts (llm_first_token -> tts_first_byte)": s["tts_first_byte"]
        - s["llm_first_token"]
        - f["tts_first_byte"]
        - f["llm_to_tts_request"],
        "output (tts_first_byte -> first_audio_sent)": s["first_audio_sent"] - s["tts_first_byte"],
        "provider ack (first_audio_sent -> heard)": s["first_audio_heard"] - s["first_audio_sent"],
        "handset - transport (VAD stop lag)": row["handset_minus_transport_ms"],
    }


# --- summary --------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (p95 of 24 values is the 23rd)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def dist(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "median": round(statistics.median(values), 1),
        "p95": round(pct(values, 95), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    stage_keys = [k for k in STAGE_ORDER if all(k in r["stages_ms"] for r in rows)]
    per_step = [s for s in map(steps, rows) if s is not None]
    fake_keys = list(rows[0]["fakes_ms"]) if rows else []
    return {
        "turns": len(rows),
        "response_ms": dist([r["response_ms"] for r in rows]),
        "transport_heard_ms": dist([r["transport_heard_ms"] for r in rows]),
        "handset_minus_transport_ms": dist([r["handset_minus_transport_ms"] for r in rows]),
        "vad_wait_ms": dist([r["vad_wait_ms"] for r in rows]),
        "fakes_total_ms": dist([r["fakes_total_ms"] for r in rows]),
        "own_ms": dist([r["own_ms"] for r in rows]),
        "own_transport_ms": dist([r["own_transport_ms"] for r in rows]),
        "own_share_of_response": round(statistics.median(r["own_ms"] / r["response_ms"] for r in rows), 4)
        if rows
        else None,
        "own_target_ms": OWN_TARGET_MS,
        "own_median_met": bool(rows) and statistics.median(r["own_ms"] for r in rows) <= OWN_TARGET_MS,
        "own_p95_met": bool(rows) and pct([r["own_ms"] for r in rows], 95) <= OWN_TARGET_MS,
        "stage_medians_ms": {k: round(statistics.median(r["stages_ms"][k] for r in rows), 1) for k in stage_keys},
        "fake_medians_ms": {k: round(statistics.median(r["fakes_ms"][k] for r in rows), 1) for k in fake_keys},
        "own_by_step_ms": {k: dist([s[k] for s in per_step]) for k in (per_step[0] if per_step else {})},
    }


def render(summary: dict[str, Any]) -> str:
    lines = [f"{summary['turns']} turns", "", f"{'':50} {'median':>8} {'p95':>8} {'min':>8} {'max':>8}"]

    def row(name: str, d: dict[str, float]) -> None:
        if d:
            lines.append(f"{name:50} {d['median']:8.1f} {d['p95']:8.1f} {d['min']:8.1f} {d['max']:8.1f}")

    row("response, handset (ms)", summary["response_ms"])
    row("response, transport first_audio_heard (ms)", summary["transport_heard_ms"])
    row("  handset - transport (ms; the VAD's lag)", summary["handset_minus_transport_ms"])
    row("VAD wait (ms)", summary["vad_wait_ms"])
    row("fakes' delays (ms)", summary["fakes_total_ms"])
    row(f"phonewire's own, handset (ms; target <= {OWN_TARGET_MS:.0f})", summary["own_ms"])
    row("phonewire's own, transport clock (ms)", summary["own_transport_ms"])
    lines += ["", "stage medians (ms since the caller stopped): "
              + ", ".join(f"{k} {v:.0f}" for k, v in summary["stage_medians_ms"].items()),
              "fakes' delay medians (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in summary["fake_medians_ms"].items()),
              "", "phonewire's own by step (ms)"]  # fmt: skip
    for name, d in summary["own_by_step_ms"].items():
        row("  " + name, d)
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit.stdout.strip() or None,
    }


def run(calls: int, turns: int, latencies: Latencies, *, warmup: bool = True) -> dict[str, Any]:
    """Run the calls and return the result (rows, summary, problems). Bounded: each call stops
    after 90 s at most, and each reply wait after 10 s."""
    with FakeOpenAIServer(
        chat_responder=reply_for,
        transcription_responder=transcriber(),
        chat_latency=ChatLatency(first_token_s=latencies.llm_first_token_s, per_token_s=latencies.llm_per_token_s),
        speech_latency=SpeechLatency(first_byte_s=latencies.tts_first_byte_s),
        transcription_latency_s=latencies.stt_s,
    ) as fake:
        runs = asyncio.run(run_calls(fake, calls, turns, warmup))
        with contextlib.suppress(TimeoutError):  # a request cut by a hang-up never completes
            fake.wait_for_requests(len(fake.requests), completed=True, timeout=5)
        rows, problems = turn_rows(fake, runs)
    return {
        "benchmark": "agent_turn_latency",
        "calls": calls,
        "turns_per_call": turns,
        "fake_latencies_ms": {k.removesuffix("_s") + "_ms": 1000 * v for k, v in asdict(latencies).items()},
        "vad": "silero (default VADParams)",
        "summary": summarize(rows),
        "problems": problems,
        "turns": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--turns", type=int, default=6, help="caller turns per call")
    parser.add_argument("--stt-ms", type=float, default=150.0, help="the fake's transcription latency")
    parser.add_argument("--llm-first-token-ms", type=float, default=250.0)
    parser.add_argument("--llm-per-token-ms", type=float, default=0.0)
    parser.add_argument("--tts-first-byte-ms", type=float, default=120.0)
    parser.add_argument("--no-warmup", action="store_true", help="count the first call too (cold start)")
    parser.add_argument("--quick", action="store_true", help="1 call x 3 turns, not saved")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    calls, turns = (1, 3) if args.quick else (args.calls, args.turns)
    latencies = Latencies(args.stt_ms / 1000, args.llm_first_token_ms / 1000, args.llm_per_token_ms / 1000,
                          args.tts_first_byte_ms / 1000)  # fmt: skip
    started = time.monotonic()
    result = run(calls, turns, latencies, warmup=not args.no_warmup)
    result["machine"] = machine()
    result["wall_s"] = round(time.monotonic() - started, 1)
    print(render(result["summary"]))
    for problem in result["problems"]:
        print("!", problem, file=sys.stderr)
    print(f"\n{result['wall_s']} s")
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
