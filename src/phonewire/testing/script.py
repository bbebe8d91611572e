"""What the simulated caller does, as a list of steps.

A phone never stops sending: between the things the caller says, the handset streams
silence every 20 ms for the whole call. So a script is not a list of messages but a
producer of one packet per tick: each step is a generator that yields ``Packet``s and reads
what the caller can perceive (``CallerView``: the time, whether the bot is audible) before
each one. The simulator owns the clock and the socket; this module owns only intent, which
keeps it testable without either.

Times are on the call's timeline: seconds since the stream started. Packet ``k`` carries
the caller's audio for ``[k * packet_s, (k + 1) * packet_s)``.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from phonewire.audio.analysis import rms_dbfs
from phonewire.audio.resample import StreamResampler
from phonewire.audio.wav import read_wav
from phonewire.exceptions import ConfigurationError
from phonewire.testing.playout import AUDIBLE_DBFS

__all__ = [
    "BargeIn",
    "CallerLog",
    "CallerUtterance",
    "CallerView",
    "HangUp",
    "Packet",
    "Press",
    "Say",
    "ScriptRunner",
    "Silence",
    "Step",
    "WaitForBotAudio",
    "WaitForBotReply",
    "WaitForBotSilence",
    "WaitForHangup",
    "builtin_recording",
    "default_script",
]

DTMF_DIGITS = frozenset("0123456789*#ABCD")

#: Bot audio interrupted by less than this is still the same utterance (pauses between words).
_WORD_GAP_S = 0.3
#: Times are sums of 20 ms steps; compare them with this much slack so 0.98 - 0.58 >= 0.4.
_EPS = 1e-6


# --- what the caller perceives and records --------------------------------------------------


@dataclass(slots=True)
class CallerUtterance:
    """One thing the caller said. ``start_s``/``end_s`` bound the audio sent;
    ``speech_start_s``/``speech_end_s`` bound the audible part of it."""

    start_s: float
    end_s: float
    speech_start_s: float
    speech_end_s: float
    barge_in: bool = False
    label: str = ""


@dataclass(slots=True)
class CallerLog:
    utterances: list[CallerUtterance] = field(default_factory=list)
    dtmf: list[tuple[float, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class CallerView:
    """The caller's senses, updated by the simulator before each packet is produced."""

    sample_rate: int
    packet_s: float
    t_s: float = 0.0
    bot_audible: bool = False
    bot_audible_for_s: float = 0.0
    bot_silent_for_s: float = 0.0
    log: CallerLog = field(default_factory=CallerLog)
    _run_start: float | None = None
    _last_audible: float | None = None

    @property
    def samples_per_packet(self) -> int:
        return round(self.sample_rate * self.packet_s)

    def hear(self, t_s: float, audible: bool) -> None:
        """Record whether the bot was audible during the packet ending at ``t_s``.

        Pauses shorter than a word gap do not end a run of bot speech, so "the bot has
        talked for 0.5 s" survives the gaps between words.
        """
        self.t_s = t_s
        self.bot_audible = audible
        if audible:
            gap = None if self._last_audible is None else t_s - self._last_audible
            if gap is None or gap > _WORD_GAP_S + self.packet_s:
                self._run_start = t_s - self.packet_s
            self._last_audible = t_s
        self.bot_audible_for_s = t_s - self._run_start if audible and self._run_start is not None else 0.0
        self.bot_silent_for_s = 0.0 if audible else t_s - (self._last_audible or 0.0)


@dataclass(frozen=True, slots=True)
class Packet:
    """One packet interval of caller behaviour: ``pcm`` (None means silence) and DTMF
    digits sent just before it; ``hangup`` ends the call instead."""

    pcm: bytes | None = None
    dtmf: str = ""
    hangup: bool = False


_SILENT = Packet()


# --- steps --------------------------------------------------------------------------------


class Step:
    """Base of script steps. ``run`` yields one ``Packet`` per packet interval."""

    __slots__ = ()

    @abstractmethod
    def run(self, caller: CallerView) -> Iterator[Packet]:
        """Yield one Packet per packet interval until the step is done."""

    def describe(self) -> str:
        return type(self).__name__


def _to_wire(pcm: bytes, rate: int, wire_rate: int) -> bytes:
    if rate == wire_rate:
        return pcm
    resampler = StreamResampler(rate, wire_rate)
    return resampler.process(pcm) + resampler.flush()


def _speech_bounds(pcm: bytes, rate: int) -> tuple[float, float]:
    """Offsets (s) of the first and last audible 10 ms frame; (0, 0) if all silent."""
    step = rate // 100
    voiced = [i for i in range(0, len(pcm) // 2, step) if rms_dbfs(pcm[2 * i : 2 * (i + step)]) > AUDIBLE_DBFS]
    if not voiced:
        return 0.0, 0.0
    return voiced[0] / rate, min(voiced[-1] + step, len(pcm) // 2) / rate


def _speak(pcm: bytes, rate: int, caller: CallerView, *, barge_in: bool, label: str) -> Iterator[Packet]:
    wire = _to_wire(pcm, rate, caller.sample_rate)
    size = 2 * caller.samples_per_packet
    start = caller.t_s
    first, last = _speech_bounds(wire, caller.sample_rate)
    sent_s = len(range(0, len(wire), size)) * caller.packet_s
    # Logged up front so an utterance cut short by the end of the call still shows.
    caller.log.utterances.append(CallerUtterance(start, start + sent_s, start + first, start + last, barge_in, label))
    for offset in range(0, len(wire), size):
        chunk = wire[offset : offset + size]
        yield Packet(pcm=chunk + bytes(size - len(chunk)))


def _mono(pcm: bytes, channels: int) -> bytes:
    if channels == 1:
        return pcm
    frames = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels).astype(np.int32)
    return (frames.sum(axis=1) // channels).astype("<i2").tobytes()


@dataclass(frozen=True, slots=True)
class Say(Step):
    """Say ``pcm`` (s16le mono at ``rate``); it is resampled to the wire rate."""

    pcm: bytes = field(repr=False)
    rate: int = 8000
    label: str = ""

    @classmethod
    def from_wav(cls, path: str | os.PathLike[str], label: str | None = None) -> Say:
        pcm, rate, channels = read_wav(path)
        return cls(_mono(pcm, channels), rate, Path(path).stem if label is None else label)

    def run(self, caller: CallerView) -> Iterator[Packet]:
        yield from _speak(self.pcm, self.rate, caller, barge_in=False, label=self.label)

    def describe(self) -> str:
        return f"saying {self.label or 'something'}"


@dataclass(frozen=True, slots=True)
class Silence(Step):
    """Send ``secs`` of silence."""

    secs: float

    def run(self, caller: CallerView) -> Iterator[Packet]:
        for _ in range(round(self.secs / caller.packet_s)):
            yield _SILENT

    def describe(self) -> str:
        return "silent"


@dataclass(frozen=True, slots=True)
class Press(Step):
    """Press keys, one DTMF event per digit, ``interval`` seconds apart."""

    digits: str
    interval: float = 0.1

    def __post_init__(self) -> None:
        bad = set(self.digits) - DTMF_DIGITS
        if not self.digits or bad:
            raise ConfigurationError(f"Press needs DTMF digits from 0-9*#A-D, got {self.digits!r}")

    def run(self, caller: CallerView) -> Iterator[Packet]:
        gap = max(0, round(self.interval / caller.packet_s) - 1)
        for digit in self.digits:
            caller.log.dtmf.append((caller.t_s, digit))
            yield Packet(dtmf=digit)
            for _ in range(gap):
                yield _SILENT

    def describe(self) -> str:
        return f"pressing {self.digits}"


def _timed_out(caller: CallerView, started: float, timeout: float, what: str) -> bool:
    if caller.t_s - started < timeout - _EPS:
        return False
    caller.log.notes.append(f"{what}: gave up after {timeout:g} s at {caller.t_s:.2f} s")
    return True


@dataclass(frozen=True, slots=True)
class WaitForBotAudio(Step):
    """Stay silent until the bot is audible (or ``timeout`` seconds pass)."""

    timeout: float = 10.0

    def run(self, caller: CallerView) -> Iterator[Packet]:
        started = caller.t_s
        while not caller.bot_audible:
            if _timed_out(caller, started, self.timeout, "waiting for bot audio"):
                return
            yield _SILENT

    def describe(self) -> str:
        return "waiting for the bot"


@dataclass(frozen=True, slots=True)
class WaitForBotSilence(Step):
    """Stay silent until the bot has been quiet for ``min_silence`` seconds. A bot that has
    not started answering yet is quiet, so use ``WaitForBotReply`` to wait for an answer."""

    timeout: float = 15.0
    min_silence: float = 0.6

    def run(self, caller: CallerView) -> Iterator[Packet]:
        started = caller.t_s
        while caller.bot_audible or caller.bot_silent_for_s < self.min_silence - _EPS:
            if _timed_out(caller, started, self.timeout, "waiting for the bot to stop"):
                return
            yield _SILENT

    def describe(self) -> str:
        return "listening"


@dataclass(frozen=True, slots=True)
class WaitForBotReply(Step):
    """Wait for the bot to start talking, then for it to finish (``min_silence`` of quiet)."""

    timeout: float = 15.0
    min_silence: float = 0.6

    def run(self, caller: CallerView) -> Iterator[Packet]:
        started = caller.t_s
        yield from WaitForBotAudio(self.timeout).run(caller)
        if caller.bot_audible:
            remaining = max(0.0, self.timeout - (caller.t_s - started))
            yield from WaitForBotSilence(remaining, self.min_silence).run(caller)

    def describe(self) -> str:
        return "waiting for the bot's reply"


@dataclass(frozen=True, slots=True)
class BargeIn(Step):
    """Once the bot has talked for ``after_bot_audio_secs``, talk over it with ``pcm``.

    If the bot does not talk within ``timeout`` seconds the caller says ``pcm`` anyway
    (noted in the report; no barge-in is recorded).
    """

    after_bot_audio_secs: float
    pcm: bytes = field(repr=False)
    rate: int = 8000
    timeout: float = 10.0
    label: str = ""

    @classmethod
    def from_wav(cls, after_bot_audio_secs: float, path: str | os.PathLike[str], *, timeout: float = 10.0) -> BargeIn:
        say = Say.from_wav(path)
        return cls(after_bot_audio_secs, say.pcm, say.rate, timeout=timeout, label=say.label)

    def run(self, caller: CallerView) -> Iterator[Packet]:
        started = caller.t_s
        barge_in = True
        while caller.bot_audible_for_s < self.after_bot_audio_secs - _EPS:
            if _timed_out(caller, started, self.timeout, "barge-in: the bot never talked"):
                barge_in = False
                break
            yield _SILENT
        yield from _speak(self.pcm, self.rate, caller, barge_in=barge_in, label=self.label)

    def describe(self) -> str:
        return "barging in"


@dataclass(frozen=True, slots=True)
class WaitForHangup(Step):
    """Stay on the line up to ``timeout`` seconds for the bot to end the call."""

    timeout: float = 5.0

    def run(self, caller: CallerView) -> Iterator[Packet]:
        started = caller.t_s
        while not _timed_out(caller, started, self.timeout, "waiting for the bot to hang up"):
            yield _SILENT

    def describe(self) -> str:
        return "waiting for hang-up"


@dataclass(frozen=True, slots=True)
class HangUp(Step):
    """The caller hangs up: the provider sends ``stop`` and closes the socket."""

    def run(self, caller: CallerView) -> Iterator[Packet]:
        yield Packet(hangup=True)

    def describe(self) -> str:
        return "hanging up"


# --- running a script ---------------------------------------------------------------------


class ScriptRunner:
    """Walks the steps, one packet per ``next_packet`` call. When the steps run out the
    caller hangs up, as a person does once they are done."""

    def __init__(self, steps: Sequence[Step], caller: CallerView) -> None:
        self.caller = caller
        self.current: Step | None = None
        self._packets = self._walk(list(steps))

    def _walk(self, steps: list[Step]) -> Iterator[Packet]:
        for step in steps:
            self.current = step
            yield from step.run(self.caller)
        self.current = None
        yield Packet(hangup=True)

    def next_packet(self) -> Packet:
        return next(self._packets, Packet(hangup=True))

    def describe(self) -> str:
        return self.current.describe() if self.current else "done"


def builtin_recording(name: str) -> Path:
    """Path of a caller recording shipped with phonewire: "hello", "thanks", and the demo's
    lines ("opening_hours", "sunday_delivery", "bread_price", "goodbye", ...)."""
    data = resources.files("phonewire.testing") / "data"
    path = data / f"caller_{name}.wav"
    if not path.is_file():
        names = sorted(p.name[len("caller_") : -len(".wav")] for p in data.iterdir() if p.name.startswith("caller_"))
        raise ConfigurationError(f"no built-in recording {name!r}; there are {', '.join(map(repr, names))}")
    return Path(str(path))


def default_script(caller_audio: str | os.PathLike[str] | None = None) -> list[Step]:
    """The call ``phonewire call`` makes: hear the greeting, ask something (``caller_audio``
    or the built-in "Hi, I would like to know my order status."), hear the answer, key in
    1-2-3, interrupt the bot's next answer with "Thank you, that's all.", hear the reply,
    press # and give the bot 5 s to end the call."""
    hello = Say.from_wav(caller_audio or builtin_recording("hello"))
    return [
        WaitForBotReply(timeout=10),
        hello,
        WaitForBotReply(timeout=15),
        Press("123"),
        BargeIn.from_wav(0.6, builtin_recording("thanks"), timeout=8),
        WaitForBotReply(timeout=15),
        Press("#"),
        WaitForHangup(timeout=5),
    ]
