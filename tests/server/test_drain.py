"""SIGTERM during calls (``phonewire serve --workers 2``): a call that ends by itself in the
drain window completes, the calls still up at the deadline hear the goodbye and are ended
normally, new streams get 1013, webhooks the fallback, /readyz 503, and the server exits in
time."""

from __future__ import annotations

import asyncio
import signal
import time
import wave
from pathlib import Path

import httpx
import numpy as np
from serve_subprocess import poll_metrics, samples, serving

from phonewire.audio.analysis import dominant_frequency
from phonewire.testing import CallReport, HangUp, Silence, simulate_call

#: Long enough that the checks made while draining (/readyz, /livez, a webhook, a refused
#: stream) finish before the deadline ends the calls and the workers exit, on a loaded CI box.
DRAIN_S = 8.0
GOODBYE_TIMEOUT_S = 8.0


def _active(text: str) -> float:
    return sum(v for _, v in samples(text, "phonewire_active_calls"))


def _draining(text: str) -> float:
    return sum(v for _, v in samples(text, "phonewire_draining"))


def _bot_tail(path: Path, secs: float) -> bytes:
    with wave.open(str(path)) as w:
        rate, frames = w.getframerate(), w.readframes(w.getnframes())
    right = np.frombuffer(frames, dtype="<i2").reshape(-1, 2)[:, 1]
    voiced = np.flatnonzero(np.abs(right) > 500)
    assert voiced.size, "the bot channel is silent"
    end = int(voiced[-1]) + 1
    return bytes(right[max(0, end - int(secs * rate)) : end].astype("<i2").tobytes())


def test_sigterm_drains_active_calls_refuses_new_ones_and_exits_in_time(tmp_path: Path) -> None:
    extra = ["--drain-timeout", str(DRAIN_S), "--drain-goodbye", "Goodbye for now."]

    async def main() -> dict[str, object]:
        async with serving(tmp_path, *extra, workers=2) as (base, proc):
            ws = base.replace("http", "ws") + "/ws"
            short = asyncio.create_task(simulate_call(ws, script=[Silence(2.0), HangUp()], max_duration_s=20))
            longs = [
                asyncio.create_task(
                    simulate_call(ws, script=[Silence(40)], max_duration_s=45, record_path=tmp_path / f"long{i}.wav")
                )
                for i in range(2)
            ]
            await poll_metrics(base, lambda t: _active(t) == 3)
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            await poll_metrics(base, lambda t: _draining(t) == 2, timeout=5)  # both workers
            async with httpx.AsyncClient(base_url=base) as http:
                ready = await http.get("/readyz")
                live = await http.get("/livez")
                webhook = await http.post("/webhooks/twilio", data={"CallSid": "CA" + "0" * 32})
            refused: CallReport = await simulate_call(ws, script=[Silence(1)], max_duration_s=10)
            reports = await asyncio.gather(short, *longs)
            exit_code = await asyncio.to_thread(proc.wait, DRAIN_S + GOODBYE_TIMEOUT_S + 10)
            return {
                "ready": ready, "live": live, "webhook": webhook, "refused": refused, "short": reports[0],
                "longs": reports[1:], "exit": exit_code, "elapsed": time.monotonic() - sent,
            }  # fmt: skip

    r = asyncio.run(main())
    log = (tmp_path / "server.log").read_text()
    assert r["ready"].status_code == 503 and r["ready"].json()["status"] == "draining"  # type: ignore[attr-defined]
    assert r["live"].status_code == 200  # type: ignore[attr-defined]
    webhook = r["webhook"]
    assert webhook.status_code == 200 and "<Hangup/>" in webhook.text and "<Say>" in webhook.text  # type: ignore[attr-defined]
    assert r["refused"].close_code == 1013, r["refused"]  # type: ignore[attr-defined]
    short = r["short"]
    assert short.completed and short.close_code != 1013, short.render_text()  # type: ignore[attr-defined]
    for i, report in enumerate(r["longs"]):  # type: ignore[attr-defined]
        # Ended by the server at the deadline, normally (close 1000), after the goodbye played.
        assert report.close_code == 1000, report.render_text()
        assert report.duration_s < DRAIN_S + GOODBYE_TIMEOUT_S, report.render_text()
        assert abs(dominant_frequency(_bot_tail(tmp_path / f"long{i}.wav", 0.5), 8000) - 440) < 10
    assert "draining, 3 calls active" in log or log.count("draining, ") == 2, log
    assert log.count("drain deadline: ending") >= 1, log
    assert "drained" in log and ", drained" in log, log  # the summary line's outcome
    assert r["exit"] == 0, log  # the multi-worker parent exits normally once both workers drained
    assert DRAIN_S <= r["elapsed"] < DRAIN_S + GOODBYE_TIMEOUT_S, log  # type: ignore[operator]
