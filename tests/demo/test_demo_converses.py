"""``phonewire demo`` converses: real Whisper and Piper, one call, checked by ear.

The demo runs as a user runs it (a subprocess, its own server child, no key, no network). The
test then listens to the bot's side of the simulator's stereo recording (right channel) the way
a person would: it cuts it into the replies between the caller's lines (left channel) and
transcribes each with Whisper, and asserts the words of each expected reply - the greeting, the
hours, the start of the delivery answer (cut off by the caller's barge-in, so its last sentence
must never be heard), the bread price and the goodbye - then that the call ended with the bot's
hang-up over the REST API.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from phonewire.audio.wav import read_wav
from phonewire.demo.brain import BAKERY_RULES, GREETING
from phonewire.demo.script import CALLER_LINES
from phonewire.transports.turn_latency import STAGES

ANSWERS = {rule.name: rule.answer for rule in BAKERY_RULES}
NUMBERS = "zero one two three four five six seven eight nine ten eleven twelve".split()
RATE = 8000


def words(text: str) -> list[str]:
    """Lower-case words, with Whisper's digits and dollar amounts spelled as the bot said them."""
    text = re.sub(r"\$(\d+)", r"\1 dollars", text.lower())
    text = re.sub(r"(\d+)\s*(am|pm|a\.m\.|p\.m\.)", r"\1", text)
    out = []
    for word in re.findall(r"[a-z']+|\d+", text.replace("phone wire", "phonewire")):
        out.append(NUMBERS[int(word)] if word.isdigit() and int(word) < len(NUMBERS) else word)
    return out


def same_word(a: str, b: str) -> bool:
    """Equal, or a near miss of tiny.en at 8 kHz ("costs"/"cost", "four"/"for")."""
    return a == b or difflib.SequenceMatcher(a=a, b=b).ratio() >= 0.75


def recall(expected: str, heard: str) -> float:
    """Share of the expected words heard, in order (longest common subsequence, near misses count)."""
    want, got = words(expected), words(heard)
    best = [0] * (len(got) + 1)
    for w in want:
        prev_diag = 0
        for j, g in enumerate(got, 1):
            keep = best[j]
            best[j] = prev_diag + 1 if same_word(w, g) else max(best[j], best[j - 1])
            prev_diag = keep
    return best[-1] / len(want)


def heard_all(expected: set[str], heard: str) -> bool:
    got = words(heard)
    return all(any(same_word(w, g) for g in got) for w in expected)


def caller_lines(left: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) seconds of each caller line: 20 ms frames above -40 dBFS, gaps < 0.5 s merged."""
    frame = RATE // 50
    n = left.size // frame
    rms = np.sqrt(np.mean(left[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    voiced = np.flatnonzero(rms > 32768 * 10 ** (-40 / 20))
    lines: list[list[float]] = []
    for i in voiced:
        t = i * frame / RATE
        if lines and t - lines[-1][1] < 0.5:
            lines[-1][1] = t + frame / RATE
        else:
            lines.append([t, t + frame / RATE])
    return [(a, b) for a, b in lines]


def transcribe(windows: list[bytes]) -> list[str]:
    from phonewire.services.local import WhisperSTTService

    async def main() -> list[str]:
        stt = WhisperSTTService(beam_size=5)  # the test listens carefully; the bot listens fast
        return [await stt.run_stt(pcm, RATE) or "" for pcm in windows]

    return asyncio.run(main())


@pytest.mark.slow
def test_the_demo_call_converses_and_the_bot_recording_says_each_expected_reply(tmp_path: Path) -> None:
    record = tmp_path / "demo.wav"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "phonewire", "demo", "--json", "--record", str(record)],
        capture_output=True,
        text=True,
        timeout=150,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    conversation = report["conversation"]

    # The call: the caller's barge-in cut the bot off, the bot hung up after its goodbye.
    summary = json.dumps({k: report[k] for k in ("end_reason", "duration_s", "turns")} | {"bot": conversation})
    assert report["completed"] and report["hangup"] == "rest" and report["close_code"] == 1000, summary
    assert len(report["barge_ins"]) == 1 and report["barge_ins"][0]["latency_ms"] < 800
    assert report["clears_received"] >= 1 and report["underruns"] == 0 and report["errors"] == []
    assert conversation["ended_by"] == "goodbye" and conversation["brain"].startswith("keyword rules")

    # The bot's side of the story: Whisper heard each caller line, and every turn has its stages.
    turns = conversation["turns"]
    assert [t["caller"] for t in turns] and len(turns) == len(CALLER_LINES)
    for turn, line in zip(turns, CALLER_LINES.values(), strict=True):
        assert recall(line, turn["caller"]) >= 0.8, (line, turn["caller"])
        assert set(STAGES) <= set(turn["stages"]), turn["stages"]
    assert [t["interrupted"] for t in turns] == [False, True, False, False]

    # By ear: the right channel between the caller's lines, transcribed.
    pcm, rate, channels = read_wav(record)
    assert (rate, channels) == (RATE, 2)
    stereo = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2)
    lines = caller_lines(stereo[:, 0])
    assert len(lines) == len(CALLER_LINES), lines
    barge_in_clear = lines[2][0] + report["barge_ins"][0]["latency_ms"] / 1000
    bounds = [(0.0, lines[0][0]), (lines[0][1], lines[1][0]), (lines[1][1], barge_in_clear)]
    bounds += [(lines[2][1], lines[3][0]), (lines[3][1], stereo.shape[0] / RATE)]
    bot = stereo[:, 1]
    heard = transcribe([bot[int(a * RATE) : int(b * RATE)].tobytes() for a, b in bounds])
    greeting, hours, delivery, price, goodbye = heard

    assert recall(GREETING, greeting) >= 0.8, greeting
    assert recall(ANSWERS["hours"], hours) >= 0.8, hours
    assert heard_all({"eight", "six", "morning", "evening", "monday", "saturday"}, hours), hours
    assert recall("Yes, we deliver on Sundays", delivery) >= 0.8, delivery
    assert recall(ANSWERS["prices"], price) >= 0.75, price
    assert heard_all({"loaf", "bread", "four", "dollars"}, price), price
    assert recall(ANSWERS["goodbye"], goodbye) >= 0.8 and "goodbye" in words(goodbye), goodbye
    # The delivery answer's last sentence was never played: the barge-in cleared it.
    assert not {"driver", "arriving"} & set(words(" ".join(heard))), heard
