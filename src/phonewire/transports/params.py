"""Transport parameters.

Plain keyword-only dataclasses: an unknown or misspelt parameter is a ``TypeError`` at
construction instead of being silently ignored (Pipecat's pydantic models drop them,
which is how a wrong Genesys parameter name went unnoticed). Names and defaults follow the
Pipecat's documentation so code ports by changing imports; where our transport gives a
field more meaning than Pipecat, the comment says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from phonewire.exceptions import ConfigurationError

__all__ = ["FastAPIWebsocketParams", "TransportParams"]

#: Send-ahead lead. Chosen by benchmarks/bench_lead.py (see docs/pacing.md): 60 ms absorbs
#: the event-loop and network hiccups seen with hundreds of calls per core, while a barge-in
#: costs nothing extra because the provider's buffer is cleared on interruption anyway.
DEFAULT_LEAD_SECS = 0.06


@dataclass(kw_only=True)
class TransportParams:
    audio_in_enabled: bool = False
    #: Pipeline rate for caller audio; None = the wire rate (8 kHz for μ-law calls), which
    #: needs no resampling at all.
    audio_in_sample_rate: int | None = None
    audio_in_channels: int = 1
    #: Optional filter with ``filter(pcm: bytes) -> bytes`` (sync or async) applied to caller audio.
    audio_in_filter: Any = None
    #: When False caller audio feeds VAD but is not pushed downstream.
    audio_in_passthrough: bool = True
    audio_out_enabled: bool = False
    #: Kept for code written against Pipecat: output frames of *any* rate are accepted and
    #: resampled once, straight to the wire rate, so this needs no setting. (Set the rate your
    #: TTS produces in PipelineParams.audio_out_sample_rate, which the StartFrame announces.)
    audio_out_sample_rate: int | None = None
    #: Kept for compatibility: stereo output frames are mixed down to mono for the phone line
    #: whatever this says.
    audio_out_channels: int = 1
    #: Outbound packet length in 10 ms units; None = the provider's own framing (20 ms for
    #: most, Exotel's size rules for Exotel).
    audio_out_10ms_chunks: int | None = None
    #: Silence played (and paced, so it really delays the hang-up) after the last audio on EndFrame.
    audio_out_end_silence_secs: float = 0.0
    #: How far ahead of real time audio is sent (see DEFAULT_LEAD_SECS).
    audio_out_lead_secs: float = DEFAULT_LEAD_SECS
    #: Upper bound on buffered bot audio; a TTS producing faster waits (backpressure).
    audio_out_max_buffer_secs: float = 60.0
    #: A playback mark every this many seconds of bot audio (and one at each utterance end):
    #: what the caller heard is the last echoed mark plus real time since, so 1 s keeps it
    #: exact while marks stay a small share of the messages.
    audio_out_mark_interval_secs: float = 1.0
    #: EndFrame waits at most this long for queued audio to play out before closing.
    audio_out_drain_timeout_secs: float = 15.0
    #: Voice activity detection on caller audio (``phonewire.audio.vad``): emits
    #: UserStarted/StoppedSpeaking and, when the bot is talking, an InterruptionFrame.
    vad_analyzer: Any = None
    #: Run Silero for all calls of the process in shared batches (one inference per ~5 ms
    #: instead of one per call per window; see transports/vad_batcher.py).
    vad_batching: bool = True
    #: Caller speech, counted from its onset, needed before it interrupts the bot; values below
    #: the VAD's start_secs change nothing (a turn is not confirmed before start_secs).
    interruption_min_speech_secs: float = 0.0

    def __post_init__(self) -> None:
        if self.audio_out_lead_secs < 0 or self.audio_out_lead_secs > 5:
            raise ConfigurationError("audio_out_lead_secs must be between 0 and 5 seconds")
        if self.audio_out_max_buffer_secs <= 0 or self.audio_out_drain_timeout_secs < 0:
            raise ConfigurationError("audio_out_max_buffer_secs must be positive and the drain timeout >= 0")
        if self.audio_out_10ms_chunks is not None and self.audio_out_10ms_chunks < 1:
            raise ConfigurationError("audio_out_10ms_chunks must be >= 1")
        if self.audio_in_channels != 1:
            raise ConfigurationError("phone audio is mono: audio_in_channels must be 1")


@dataclass(kw_only=True)
class FastAPIWebsocketParams(TransportParams):
    #: Give each outgoing audio payload a complete WAV header for the wire encoding.
    add_wav_header: bool = False
    #: The provider serializer (``TwilioFrameSerializer`` ...). Required.
    serializer: Any = None
    #: Seconds after the call starts that ``on_session_timeout`` fires. With no handler
    #: registered the transport ends the call itself (plays out, hangs up, closes).
    session_timeout: float | None = None
    #: Exact size in bytes of every outgoing *audio* payload (encoded), e.g. 640 for 20 ms
    #: of 16 kHz PCM16. Tails are padded with silence at utterance end and on EndFrame.
    fixed_audio_packet_size: int | None = None
    #: Upper bound on closing the WebSocket.
    ws_close_timeout: float = 0.5
    #: Upper bound on any single send; a peer that stops reading cannot wedge the call.
    ws_send_timeout: float = 2.0
    #: Largest inbound message accepted; larger ones close the call with 1009.
    max_message_bytes: int = 64 * 1024
    #: Inbound messages per second before the connection is closed with 1008 (a real call
    #: sends ~50; Exotel 10). None disables.
    max_messages_per_second: float | None = 500.0
    #: Seconds of ``max_messages_per_second`` that may arrive at once (a token bucket): after a
    #: stall of this server's loop the socket's backlog is read in a burst, and a real call's
    #: backlog must not read as a flood. A flood is still closed once the burst is spent.
    max_message_burst_secs: float = 5.0
    #: No inbound message for this long means a dead peer (half-open TCP): the call ends.
    no_media_timeout_secs: float | None = 30.0
    #: On disconnect: True cancels the pipeline, False leaves it to the app, None (default)
    #: cancels only when no ``on_client_disconnected`` handler is registered.
    cancel_on_disconnect: bool | None = None
    #: Bound on the auto hang-up REST call (per attempt); one retry on 429/5xx/network errors.
    hangup_timeout_secs: float = 3.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fixed_audio_packet_size is not None and self.fixed_audio_packet_size <= 0:
            raise ConfigurationError("fixed_audio_packet_size must be a positive number of bytes")
        if self.session_timeout is not None and self.session_timeout <= 0:
            raise ConfigurationError("session_timeout must be positive (or None)")
