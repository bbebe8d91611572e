"""The three service fakes of the cascaded-agent benchmark, in one process of their own.

``FakeDeepgramServer`` (live STT), ``FakeOpenAIServer`` (chat completions, streamed) and
``FakeCartesiaServer`` (TTS WebSocket), each on its own thread and loop, on 127.0.0.1, with fixed
latencies. Started by ``bench_cascaded_agent.py`` pinned to the callers' core, one process per
load level (so no records pile up). Protocol on stdin/stdout, one JSON line each:

* at start it prints ``{"deepgram": URL, "openai": URL, "cartesia": URL, "keys": {...}}``;
* ``stats`` prints what the fakes measured since start (their own delays, request counts, the
  encodings they were asked for);
* end of stdin (or SIGTERM) stops it.

    python benchmarks/load/agent_fakes.py --llm-first-token-ms 250 --tts-first-byte-ms 120
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
from typing import Any

from phonewire.testing.fakes import ChatLatency, FakeCartesiaServer, FakeDeepgramServer, FakeOpenAIServer

__all__ = ["CALLER_TEXT", "REPLY", "main"]

CALLER_TEXT = "I would like to know my order status."
REPLY = "Sure, let me check that for you."
DEEPGRAM_KEY = "dg-bench-key"
CARTESIA_KEY = "cartesia-bench-key"
OPENAI_KEY = "sk-bench"


def _median_ms(values: list[float]) -> float | None:
    return round(1000 * statistics.median(values), 1) if values else None


def _p95_ms(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1)


def stats(openai: FakeOpenAIServer, deepgram: FakeDeepgramServer, cartesia: FakeCartesiaServer) -> dict[str, Any]:
    chats = [r for r in openai.requests if r.endpoint == "chat"]
    chat_delays = [
        r.event_times[0] - r.arrived_at for r in chats if r.event_times and r.arrived_at is not None
    ]  # first SSE chunk after the request arrived: the configured first-token latency plus the fake's own
    first_input: dict[str, float] = {}
    for m in list(cartesia.received):
        if isinstance(m.data, dict) and str(m.data.get("transcript") or "").strip():
            first_input.setdefault(m.data["context_id"], m.at)
    first_chunk: dict[str, float] = {}
    for m in list(cartesia.sent):
        if m.data.get("type") == "chunk":
            first_chunk.setdefault(m.data["context_id"], m.at)
    tts_delays = [first_chunk[c] - t for c, t in first_input.items() if c in first_chunk]
    formats = sorted(
        {
            json.dumps(m.data.get("output_format"), sort_keys=True)
            for m in list(cartesia.received)
            if isinstance(m.data, dict) and "output_format" in m.data
        }
    )
    conns = list(deepgram.connections)
    return {
        "openai": {"chat_requests": len(chats), "first_token_ms": {"median": _median_ms(chat_delays),
                                                                   "p95": _p95_ms(chat_delays)}},
        "cartesia": {"connections": cartesia.connections, "contexts": len(first_input),
                     "first_byte_ms": {"median": _median_ms(tts_delays), "p95": _p95_ms(tts_delays)},
                     "output_formats": [json.loads(f) for f in formats]},
        "deepgram": {"connections": len(conns),
                     "encodings": sorted({f"{c.encoding or 'linear16'}/{c.query.get('sample_rate', '?')}"
                                          for c in conns}),
                     "finals": sum(len(c.finals()) for c in conns),
                     "finalizes": sum(c.finalizes for c in conns),
                     "audio_mb": round(sum(len(c.audio) for c in conns) / 2**20, 1)},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm-first-token-ms", type=float, default=250.0)
    parser.add_argument("--tts-first-byte-ms", type=float, default=120.0)
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    signal.signal(signal.SIGTERM, lambda *_: sys.stdin.close())
    with (
        FakeOpenAIServer(
            chat_responder=lambda request: REPLY,
            chat_latency=ChatLatency(first_token_s=args.llm_first_token_ms / 1000),
            max_concurrent_streams=1000,
        ) as openai,
        FakeDeepgramServer(default_transcript=CALLER_TEXT, api_key=DEEPGRAM_KEY) as deepgram,
        FakeCartesiaServer(api_key=CARTESIA_KEY, first_byte_s=args.tts_first_byte_ms / 1000) as cartesia,
    ):
        urls = {"deepgram": deepgram.base_url, "openai": openai.base_url, "cartesia": cartesia.base_url}
        keys = {"deepgram": DEEPGRAM_KEY, "openai": OPENAI_KEY, "cartesia": CARTESIA_KEY}
        print(json.dumps({**urls, "keys": keys}), flush=True)
        try:
            for line in sys.stdin:
                if line.strip() == "stats":
                    print(json.dumps(stats(openai, deepgram, cartesia)), flush=True)
        except (ValueError, OSError):  # stdin closed by SIGTERM
            pass


if __name__ == "__main__":
    main()
