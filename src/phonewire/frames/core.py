"""The frames that flow through a phonewire pipeline.

Three kinds, told apart by base class, decide how a frame travels:

* ``SystemFrame`` - handled the moment it is queued, overtaking queued data; never
  dropped by an interruption (start, cancel, interruption, inbound audio and DTMF,
  speaking events).
* ``DataFrame`` - travels in order through each processor's queue and is dropped
  by an interruption (bot audio, text, ordered transport messages).
* ``ControlFrame`` - in order like data; dropped by an interruption unless it is
  also ``UninterruptibleFrame`` (``EndFrame`` is: an end must never be lost).

Frames are plain slotted dataclasses: a 20 ms packet creates one or two of them
per call, so they must stay cheap to build (see docs/architecture.md).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

__all__ = [
    "AudioRawFrame",
    "BotSpeakingFrame",
    "BotStartedSpeakingFrame",
    "BotStoppedSpeakingFrame",
    "CancelFrame",
    "CancelTaskFrame",
    "ClientConnectedFrame",
    "ControlFrame",
    "DataFrame",
    "EndFrame",
    "EndTaskFrame",
    "ErrorFrame",
    "Frame",
    "FrameDirection",
    "InputAudioRawFrame",
    "InputDTMFFrame",
    "InputTransportMessageFrame",
    "InterruptionFrame",
    "KeypadEntry",
    "OutputAudioRawFrame",
    "OutputDTMFFrame",
    "OutputDTMFUrgentFrame",
    "OutputTransportMessageFrame",
    "OutputTransportMessageUrgentFrame",
    "PlaybackSource",
    "StartFrame",
    "StopFrame",
    "SystemFrame",
    "TTSAudioRawFrame",
    "TTSStartedFrame",
    "TTSStoppedFrame",
    "TTSWireAudioFrame",
    "TextFrame",
    "TranscriptionFrame",
    "UninterruptibleFrame",
    "UserStartedSpeakingFrame",
    "UserStoppedSpeakingFrame",
    "VADUserStartedSpeakingFrame",
    "VADUserStoppedSpeakingFrame",
    "VADUserStoppingFrame",
]

_ids = itertools.count(1)


class FrameDirection(Enum):
    DOWNSTREAM = 1
    UPSTREAM = 2


class KeypadEntry(StrEnum):
    """A telephone key. Unlike Pipecat, A-D exist: Plivo and SIP gateways send them."""

    ZERO = "0"
    ONE = "1"
    TWO = "2"
    THREE = "3"
    FOUR = "4"
    FIVE = "5"
    SIX = "6"
    SEVEN = "7"
    EIGHT = "8"
    NINE = "9"
    STAR = "*"
    POUND = "#"
    A = "A"
    B = "B"
    C = "C"
    D = "D"


class PlaybackSource(StrEnum):
    """Where a bot-speaking decision came from: the provider's word or our send clock."""

    PROVIDER_ACK = "provider_ack"
    SEND_CLOCK = "send_clock"


@dataclass(slots=True, kw_only=True)
class Frame:
    id: int = field(default_factory=_ids.__next__)  # no lambda: three frames a packet
    metadata: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return f"{type(self).__name__}#{self.id}"

    def __str__(self) -> str:
        return self.name


@dataclass(slots=True, kw_only=True)
class SystemFrame(Frame):
    """Handled at once, overtaking queued data; never dropped by an interruption."""


@dataclass(slots=True, kw_only=True)
class DataFrame(Frame):
    """Travels in order through each processor's queue; dropped by an interruption."""


@dataclass(slots=True, kw_only=True)
class ControlFrame(Frame):
    """In order like data; dropped by an interruption unless also UninterruptibleFrame."""


class UninterruptibleFrame:
    """Mixin: survives the queue flush that an interruption causes."""

    __slots__ = ()


# --- lifecycle -------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class StartFrame(SystemFrame):
    """First frame through every processor. Rates of None mean "the wire rate"."""

    audio_in_sample_rate: int | None = None
    audio_out_sample_rate: int | None = None
    allow_interruptions: bool = True
    enable_metrics: bool = False
    enable_usage_metrics: bool = False
    report_only_initial_ttfb: bool = False


@dataclass(slots=True, kw_only=True)
class CancelFrame(SystemFrame):
    """Stop now: queued audio is discarded."""

    reason: str | None = None


@dataclass(slots=True, kw_only=True)
class EndFrame(ControlFrame, UninterruptibleFrame):
    """Finish gracefully: queued audio is played (bounded by a timeout) first."""

    reason: str | None = None


@dataclass(slots=True, kw_only=True)
class StopFrame(ControlFrame, UninterruptibleFrame):
    """Pause the pipeline; processors stay alive."""


@dataclass(slots=True, kw_only=True)
class EndTaskFrame(SystemFrame):
    """Pushed upstream: asks the PipelineTask to end gracefully (queue an EndFrame)."""

    reason: str | None = None


@dataclass(slots=True, kw_only=True)
class CancelTaskFrame(SystemFrame):
    """Pushed upstream: asks the PipelineTask to cancel."""

    reason: str | None = None


@dataclass(slots=True, kw_only=True)
class ErrorFrame(SystemFrame):
    error: str
    fatal: bool = False
    exception: BaseException | None = None


@dataclass(slots=True, kw_only=True)
class InterruptionFrame(SystemFrame):
    """The caller talked over the bot: flush in-flight bot output everywhere."""


@dataclass(slots=True, kw_only=True)
class ClientConnectedFrame(SystemFrame):
    """Pushed by the input transport when the call's stream is up."""


# --- audio -----------------------------------------------------------------------------


class AudioRawFrame:
    """Mixin for audio frames: signed 16-bit little-endian PCM, interleaved when
    num_channels > 1. Concrete classes declare ``audio``, ``sample_rate`` and
    ``num_channels`` themselves (slotted dataclasses cannot share field layouts)."""

    __slots__ = ()
    audio: bytes
    sample_rate: int
    num_channels: int

    @property
    def num_frames(self) -> int:
        return len(self.audio) // (2 * self.num_channels)

    @property
    def duration(self) -> float:
        return self.num_frames / self.sample_rate


@dataclass(slots=True, kw_only=True)
class InputAudioRawFrame(SystemFrame, AudioRawFrame):
    """Caller audio. A system frame so it is never queued behind bot work.

    ``wire_audio`` is the payload exactly as the phone line carried it (``wire_encoding``
    "mulaw" or "alaw", at ``sample_rate``), kept when the input transport is in wire mode
    (``use_wire_audio()``) so a service that speaks the line's codec (OpenAI Realtime, Deepgram)
    sends it untouched: no decode, no resample. In wire mode ``audio`` is empty. (The output
    side's counterpart is ``TTSWireAudioFrame``.)
    """

    audio: bytes
    sample_rate: int
    num_channels: int = 1
    wire_audio: bytes | None = None
    wire_encoding: str | None = None


@dataclass(slots=True, kw_only=True)
class OutputAudioRawFrame(DataFrame, AudioRawFrame):
    """Audio for the caller to hear; any rate, the transport resamples once to the wire."""

    audio: bytes
    sample_rate: int
    num_channels: int = 1


@dataclass(slots=True, kw_only=True)
class TTSAudioRawFrame(OutputAudioRawFrame):
    context_id: str | None = None


@dataclass(slots=True, kw_only=True)
class TTSWireAudioFrame(TTSAudioRawFrame):
    """TTS audio already in a G.711 wire encoding (``encoding`` "mulaw" or "alaw", one byte
    per sample), not PCM. Why: a TTS that can speak the call's own format (Cartesia
    ``pcm_mulaw``, ElevenLabs ``ulaw_8000``) should reach the wire with zero transcoding; the
    output transport packetizes it and sends it as is when it matches the serializer's output
    format, and decodes it once otherwise. Processors that read ``audio`` as PCM must check
    for this type (``isinstance(frame, TTSWireAudioFrame)``)."""

    encoding: str = "mulaw"

    @property
    def num_frames(self) -> int:
        return len(self.audio) // self.num_channels


@dataclass(slots=True, kw_only=True)
class TTSStartedFrame(ControlFrame):
    """Marks the start of a bot utterance."""


@dataclass(slots=True, kw_only=True)
class TTSStoppedFrame(ControlFrame):
    """Marks the end of a bot utterance: flush resampler and packetizer tails, send a mark."""


# --- text ------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class TextFrame(DataFrame):
    text: str


@dataclass(slots=True, kw_only=True)
class _TranscriptFrame(TextFrame):
    """What every transcript carries: who spoke, when, in which language. The base of
    ``TranscriptionFrame`` (final) and ``InterimTranscriptionFrame`` (may still change)."""

    user_id: str = ""
    timestamp: str = ""
    language: str | None = None


@dataclass(slots=True, kw_only=True)
class TranscriptionFrame(_TranscriptFrame):
    #: True when the STT service marked this the final result of the turn (Deepgram
    #: ``from_finalize``, a per-turn Whisper request): the user aggregator waits for no more.
    finalized: bool = False


# --- DTMF ------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class InputDTMFFrame(SystemFrame):
    button: KeypadEntry
    duration_ms: int | None = None


class _OutputDTMF:
    """Mixin for the two outbound DTMF frames: ``buttons`` (a string of keys) or one
    ``button``. Concrete classes declare both fields themselves (slotted dataclasses cannot
    share field layouts across a DataFrame and a SystemFrame)."""

    __slots__ = ()
    button: KeypadEntry | None
    buttons: str

    @property
    def digits(self) -> str:
        return self.buttons or (self.button.value if self.button else "")


@dataclass(slots=True, kw_only=True)
class OutputDTMFFrame(DataFrame, _OutputDTMF):
    """Digits to send to the call, in order with bot audio."""

    button: KeypadEntry | None = None
    buttons: str = ""


@dataclass(slots=True, kw_only=True)
class OutputDTMFUrgentFrame(SystemFrame, _OutputDTMF):
    """Digits to send to the call at once, ahead of queued audio."""

    button: KeypadEntry | None = None
    buttons: str = ""


# --- transport messages ----------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class InputTransportMessageFrame(SystemFrame):
    message: Any


@dataclass(slots=True, kw_only=True)
class OutputTransportMessageFrame(DataFrame):
    """Sent in order with the bot's audio."""

    message: Any


@dataclass(slots=True, kw_only=True)
class OutputTransportMessageUrgentFrame(SystemFrame):
    """Sent at once, ahead of queued audio."""

    message: Any


# --- turn-taking -----------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class UserStartedSpeakingFrame(SystemFrame):
    """The caller's turn began (the VAD confirmed speech)."""


@dataclass(slots=True, kw_only=True)
class UserStoppedSpeakingFrame(SystemFrame):
    """The caller's turn ended (the VAD heard stop_secs of silence)."""


@dataclass(slots=True, kw_only=True)
class VADUserStartedSpeakingFrame(SystemFrame):
    start_secs: float = 0.0
    timestamp: float = 0.0


@dataclass(slots=True, kw_only=True)
class VADUserStoppedSpeakingFrame(SystemFrame):
    stop_secs: float = 0.0
    timestamp: float = 0.0


@dataclass(slots=True, kw_only=True)
class VADUserStoppingFrame(SystemFrame):
    """The caller has been quiet ``silence_secs`` inside a speech run (``VADParams.early_stop_secs``):
    a ``VADUserStoppedSpeakingFrame`` follows unless they speak again first. A segmented STT
    starts transcribing here (speculatively); nothing else needs it."""

    silence_secs: float = 0.0
    timestamp: float = 0.0


@dataclass(slots=True, kw_only=True)
class BotStartedSpeakingFrame(SystemFrame):
    source: PlaybackSource = PlaybackSource.SEND_CLOCK


@dataclass(slots=True, kw_only=True)
class BotSpeakingFrame(SystemFrame):
    """Periodic 'still speaking' signal, for idle timers."""


@dataclass(slots=True, kw_only=True)
class BotStoppedSpeakingFrame(SystemFrame):
    """The caller has finished hearing the bot (or it was interrupted).

    ``source`` says whether the provider acknowledged playback or the send clock was used;
    ``heard_ms`` and ``heard_text`` say how much of the utterance the caller heard.
    """

    source: PlaybackSource = PlaybackSource.SEND_CLOCK
    interrupted: bool = False
    heard_ms: float | None = None
    sent_ms: float | None = None
    heard_text: str | None = None
