"""FastAPIWebsocketTransport: one phone call's WebSocket, as two pipeline processors.

The transport owns the socket and everything that waits on the peer; ``.input()`` reads
the provider's messages and pushes caller audio and DTMF into the pipeline, ``.output()``
paces the bot's audio back out. Both share this object, which holds the connection's
lifecycle (one ``CallState`` machine, ``call_state.py``; changed only by ``_transition``),
the single send path (one FIFO turn, ``send_turn.py``; every send bounded by
``ws_send_timeout`` through the ``watchdog.py`` task), the owned background tasks (hang-up,
timers) and the events:

* ``on_client_connected(transport, websocket)`` - once, when the pipeline starts the input;
* ``on_client_disconnected(transport, websocket)`` - once, when the peer goes away (socket
  closed, provider ``stop``, a dead peer found by the no-media timeout or a failed send);
  with no handler registered the transport cancels the pipeline itself, so nothing lingers;
* ``on_session_timeout(transport, websocket)`` - once, ``session_timeout`` seconds after
  the start; with no handler the transport ends the call gracefully;
* ``on_client_detached(transport, reason)`` / ``on_client_resumed(transport, websocket)`` -
  with ``resume_window_secs`` set, a verified call whose socket drops (no provider ``stop``,
  no deliberate close) is held for that long instead of ending, and a reconnect for the same
  call is attached to this transport (``resume``): the pipeline, and the bot's context, go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from phonewire import logsafe
from phonewire.events import EventEmitter
from phonewire.exceptions import ConfigurationError, ProtocolError
from phonewire.frames import CancelTaskFrame, EndTaskFrame, FrameDirection
from phonewire.serializers.base import CallInfo, FrameSerializer, Message
from phonewire.telephony.handshake import Handshake
from phonewire.telephony.hangup import perform_hangup
from phonewire.transports.asgi import Receive, Send, raw_channel
from phonewire.transports.call_control import CallControlOutputTransport
from phonewire.transports.call_state import CALL_OVER, CallLifecycle, CallState, CloseReason, HangupSkip
from phonewire.transports.input import FastAPIWebsocketInputTransport
from phonewire.transports.output import FastAPIWebsocketOutputTransport
from phonewire.transports.params import FastAPIWebsocketParams
from phonewire.transports.send_turn import SendTurn
from phonewire.transports.stats import MAX_LEAD_SAMPLES, TransportStats
from phonewire.transports.watchdog import Watchdog

__all__ = ["FastAPIWebsocketTransport"]

logger = logging.getLogger("phonewire.transport")
logsafe.install()  # call ids and other peer values in log lines cannot forge lines (issue 11 #7)

EVENTS = (
    "on_client_connected",
    "on_client_disconnected",
    "on_session_timeout",
    "on_answering_machine",  # (transport, AnsweringMachineFrame): the provider's AMD verdict
    "on_call_status",  # (transport, CallStatusFrame): ringing/answered/... from signed callbacks
    "on_client_detached",  # (transport, reason): the socket dropped; held for a reconnect
    "on_client_resumed",  # (transport, websocket): a reconnect took the call over
)
#: How long cleanup waits for a running hang-up before abandoning it.
HANGUP_SHUTDOWN_SECS = 4.0

#: Close reasons that mean the call is over on the provider's side: no hang-up is sent
#: (``CloseReason`` members; being a StrEnum, ``"stop" in CALL_OVER_REASONS`` holds too).
CALL_OVER_REASONS = CALL_OVER
#: Protocol errors are logged in full this many times per call, then only counted.
LOGGED_ERRORS_PER_CALL = 10
#: A failed send waits this long for the receive loop's verdict on the socket (a close frame
#: ends the call, a dropped connection holds it for a reconnect) before holding the call.
SEND_FAILURE_VERDICT_SECS = 1.0


def _check_packet_params(params: FastAPIWebsocketParams) -> None:
    """Packet settings that can only fail at call time are refused at construction."""
    fmt, policy = params.serializer.output_format, params.serializer.packet_policy
    size = params.fixed_audio_packet_size
    if size is not None and size % fmt.bytes_per_sample:
        raise ConfigurationError(
            f"fixed_audio_packet_size={size} is not a whole number of {fmt.encoding} samples "
            f"({fmt.bytes_per_sample} bytes each)"
        )
    if params.add_wav_header and policy.exact:
        raise ConfigurationError(
            f"add_wav_header cannot be used with {params.serializer.provider}: its audio frames must be "
            f"exactly {policy.packet_bytes} bytes of raw PCM"
        )


class CallLog(logging.LoggerAdapter):
    """Prefixes every line with the provider and call id, and puts provider, call id and
    stream id on the record too (``extra``) so a JSON formatter can give them fields."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = self.extra or {}
        kwargs["extra"] = {**extra, **kwargs["extra"]} if "extra" in kwargs else extra
        return f"[{extra.get('provider')} {extra.get('call_id')}] {msg}", kwargs


class FastAPIWebsocketTransport(EventEmitter):
    def __init__(
        self,
        websocket: WebSocket,
        params: FastAPIWebsocketParams,
        input_name: str | None = None,
        output_name: str | None = None,
        *,
        call_info: CallInfo | None = None,
        pending_messages: list[Message] | None = None,
        handshake: Handshake | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep,
    ) -> None:
        super().__init__()
        if handshake is not None:
            call_info = call_info or handshake.info
            pending_messages = pending_messages if pending_messages is not None else handshake.pending
        if not isinstance(params.serializer, FrameSerializer):
            raise ConfigurationError("FastAPIWebsocketParams.serializer must be a phonewire FrameSerializer")
        _check_packet_params(params)
        self._websocket = websocket
        self._params = params
        self.call_info = call_info
        self.clock = clock
        self.sleep = sleep
        self.stats = TransportStats()
        self._lifecycle = CallLifecycle()
        #: ``state.closed``, kept by ``_transition`` as a plain attribute for the per-packet path.
        self.closed = False
        #: Why the connection closed, as a key (``stats.close_reason`` has the text).
        self.close_cause: CloseReason | None = None
        self._turn = SendTurn()
        #: Bounds every send, notices a silent peer; the receive loop reports to it.
        self.watchdog = Watchdog(clock, sleep)
        self._watchdog_task: asyncio.Task[Any] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: set[asyncio.Task[Any]] = set()
        self._fired: set[str] = set()
        self._hangup_started = False
        #: Bumped by every interruption; audio sends carry the generation they belong to.
        self.audio_generation = 0
        #: The ASGI server's own receive/send once ``use_raw_channel`` found them.
        self.raw_receive: Receive | None = None
        self._raw_send: Send | None = None
        #: Whether the call id was verified (a stream token checked by the server).
        self.verified = False
        #: Auto hang-up runs only when True; ``create_app`` sets it to ``verified`` so a
        #: forged start never makes us hang up somebody else's call with our credentials.
        self.hangup_allowed = True
        #: Where the call went once a transfer succeeded: no hang-up then (it would end the
        #: transferred call), and the provider's stop is the expected end, not the caller leaving.
        self.transferred_to: str | None = None
        #: Set by create_app: this server's public base URL and its live-call registry.
        self.public_base: str | None = None
        self.live_calls: Any = None
        self._call_control: Any = None
        #: This call's recording tap (``phonewire.recording``), None when not recording; the
        #: server's ``RecordingConfig`` when it has one (``start_recording`` uses it).
        self.recorder: Any = None
        self.recording_config: Any = None
        #: Seconds a verified call whose socket dropped is held for a reconnect (0: off; set
        #: by create_app from ``ServerConfig.resume_window_secs`` for the providers that reconnect).
        self.resume_window_secs = 0.0
        #: Why the socket went (cause, text), while the call is held for a reconnect.
        self._held: tuple[CloseReason, str] | None = None
        #: Reconnects this call has resumed on.
        self.resumes = 0
        self._resume_timer: asyncio.Task[Any] | None = None
        self._peer_closed_before = False
        #: Set when the current socket is no longer this call's (swapped out, or the call ended):
        #: the server's handler for a resumed socket waits on it.
        self._socket_released = asyncio.Event()
        call_id = (call_info.call_id if call_info else None) or getattr(params.serializer, "call_sid", None)
        stream_id = call_info.stream_id if call_info else None
        self.log = CallLog(
            logger, {"provider": params.serializer.provider, "call_id": call_id or "-", "stream_id": stream_id or "-"}
        )
        self._input = FastAPIWebsocketInputTransport(self, pending_messages or [], name=input_name)
        self._output = CallControlOutputTransport(self, name=output_name)
        for name in EVENTS:
            self._register_event_handler(name)
        if handshake is not None and handshake.early_messages:
            self.stats.protocol_errors["message before start"] += handshake.early_messages

    # --- the public face ---------------------------------------------------------------

    def input(self) -> FastAPIWebsocketInputTransport:
        return self._input

    def output(self) -> FastAPIWebsocketOutputTransport:
        return self._output

    @property
    def websocket(self) -> WebSocket:
        return self._websocket

    @property
    def params(self) -> FastAPIWebsocketParams:
        return self._params

    @property
    def serializer(self) -> FrameSerializer:
        return self._params.serializer

    @property
    def state(self) -> CallState:
        """Where the call is in its lifecycle (``call_state.py``); read-only."""
        return self._lifecycle.state

    @property
    def parked(self) -> str | None:
        """Why the socket went, while the call is held for a reconnect; None otherwise."""
        held = self._held
        return held[1] if held is not None and self._lifecycle.state is CallState.HELD else None

    def _transition(self, target: CallState) -> None:
        """The one place the call's state changes (``CallLifecycle`` checks the move)."""
        previous = self._lifecycle.transition(target)
        self.closed = target.closed
        self.log.debug("= state %s -> %s", previous, target)

    def _note_close(self, cause: CloseReason, text: str | None = None, *, replace: bool = False) -> None:
        """Record why the connection closed: the first reason stays unless ``replace``."""
        if replace or not self.stats.close_reason:
            self.close_cause = cause
            self.stats.close_reason = text or cause.value

    def _skip_hangup(self, why: HangupSkip, text: str | None = None) -> None:
        self.stats.hangup_skip = why
        self.stats.hangup = f"skipped: {text or why.value}"

    @property
    def call_control(self) -> Any:
        """This call's ``CallController`` (transfer, DTMF through the provider's API)."""
        if self._call_control is None:
            from phonewire.telephony.call_control import CallController

            info = self.call_info
            self._call_control = CallController(
                self.serializer,
                verified=self.hangup_allowed and self.verified,
                public_base=self.public_base,
                waiters=self.live_calls,
                own_number=info.to_number if info else None,
                timeout_secs=self._params.hangup_timeout_secs,
            )
        return self._call_control

    @property
    def bot_speaking(self) -> bool:
        return self._output.bot_speaking

    def start_recording(self, config: Any = None) -> Any:
        """Record this call (stereo WAV + JSON sidecar, ``phonewire.recording``) with ``config``
        (a ``RecordingConfig``) or the server's; call it before the pipeline starts to have
        the whole call. Idempotent. Returns the tap (``.note(role, text)`` adds transcript lines)."""
        from phonewire.recording import start_recording

        config = config or self.recording_config
        if config is None:
            raise ConfigurationError("start_recording needs a RecordingConfig (or ServerConfig.recording)")
        self.recording_config = config
        return start_recording(self, config)

    async def detach(self, reason: str) -> None:
        """Another stream took this call over (``duplicate_stream_policy="replace"``): close
        this socket and end this pipeline as if the peer left, but without a hang-up - the
        call itself goes on, on the new stream. ``reason`` is the text kept and logged."""
        self._hangup_started = True
        self._skip_hangup(HangupSkip.REPLACED)
        self._note_close(CloseReason.REPLACED, reason, replace=True)
        await self.close(1000, reason)
        self._abort_after_close()
        await self.peer_gone(CloseReason.REPLACED, reason)

    def _abort_after_close(self) -> None:
        """Our close was for the peer's sake: what a peer leaving does still runs (peer_gone)."""
        if self._lifecycle.state is CallState.CLOSED:
            self._transition(CallState.ABORTING)

    # --- sending -----------------------------------------------------------------------

    async def send(self, message: Message, generation: int | None = None) -> bool:
        """Send one message; False if the peer is gone. Never raises, never waits unbounded.

        One send at a time, in arrival order. ``generation`` (audio only) is checked once it
        is this send's turn: audio produced before an interruption must not slip out after
        the clear sent while it waited. The turn-taking is an asyncio.Lock's, with the
        uncontended case inline (the lock's five method calls were a tenth of this path)."""
        if self.closed:
            return False
        turn = self._turn
        if turn.busy or turn.waiters:
            await turn.wait()
        turn.busy = True
        task = asyncio.current_task()
        raw = self._raw_send
        watchdog = self.watchdog
        try:
            if self.closed or (generation is not None and generation != self.audio_generation):
                return False  # closed while this send waited, or its audio was interrupted
            # The watchdog (not a timeout per message, which costs a timer per packet) cancels
            # a send stuck for longer than ws_send_timeout (Watchdog.begin_send, inline).
            watchdog.sender, watchdog.send_started, watchdog.send_expired = task, self.clock(), False
            if raw is not None:
                key = "text" if isinstance(message, str) else "bytes"
                await raw({"type": "websocket.send", key: message})
            elif isinstance(message, str):
                await self._websocket.send_text(message)
            else:
                await self._websocket.send_bytes(message)
        except asyncio.CancelledError:
            if not watchdog.claim_send_timeout(task):
                raise
            self.stats.send_failures += 1
            self.log.warning("- send timed out after %.1fs: peer is not reading", self._params.ws_send_timeout)
            await self.peer_gone(CloseReason.SEND_TIMEOUT, resumable=True)
            return False
        except Exception as exc:  # starlette raises RuntimeError/WebSocketDisconnect/OSError
            if raw is not None:
                self._websocket.application_state = WebSocketState.DISCONNECTED  # as Starlette would
            self.stats.send_failures += 1
            self.log.info("- send failed (%s): peer is gone", type(exc).__name__)
            if self.resume_window_secs > 0 and self.verified:
                await self._send_failed_resumable(task)
            else:
                await self.peer_gone(CloseReason.SEND_FAILED)
            return False
        finally:
            watchdog.send_started = None
            turn.busy = False
            if turn.waiters:
                turn.wake_next()
        self.stats.messages_out += 1
        return True

    def use_raw_channel(self) -> None:
        """Send and receive through the ASGI server's own callables when the app recorded
        them (``RawWebSocketMiddleware``, see ``asgi.py``); only once the socket is open,
        so Starlette has done the accept and its state says so."""
        channel = raw_channel(self._websocket.scope)
        ws = self._websocket
        if channel is None or ws.application_state != WebSocketState.CONNECTED:
            return
        if ws.client_state != WebSocketState.CONNECTED:
            return
        self.raw_receive, self._raw_send = channel

    def start_watchdog(self) -> None:
        """One task per call bounds every send and notices a silent peer (``watchdog.py``)."""
        watchdog, params = self.watchdog, self._params
        watchdog.last_receive = self.clock()
        if self._watchdog_task is None or self._watchdog_task.done():
            watchdog.send_timeout, watchdog.quiet_timeout = params.ws_send_timeout, params.no_media_timeout_secs
            self._watchdog_task = self.spawn(watchdog.run(lambda: not self.closed, self._sample_lead), "watchdog")

    def _sample_lead(self, now: float) -> None:
        """The send-ahead lead, once a watchdog period while the bot speaks (for /metrics:
        a sample a second instead of a measurement per packet)."""
        output = self._output
        pacer = getattr(output, "pacer", None)
        if pacer is None or not output.bot_speaking:
            return
        samples = self.stats.send_lead_samples
        samples.append(pacer.buffered_secs(now))
        if len(samples) > MAX_LEAD_SAMPLES:
            del samples[0]  # a long call keeps its latest

    async def send_all(self, messages: list[Message], generation: int | None = None) -> bool:
        for message in messages:
            if not await self.send(message, generation):
                return False
        return True

    # --- lifecycle -----------------------------------------------------------------------

    def fire_once(self, event: str) -> None:
        if event in self._fired:
            return
        self._fired.add(event)
        self.log.debug("= event %s", event)
        self._call_event_handler(event, self._websocket)

    async def peer_gone(self, reason: CloseReason, text: str | None = None, *, resumable: bool = False) -> None:
        """The caller's side ended: fire the event once and, by default, cancel the pipeline.

        ``text``: the reason as logged and kept in ``stats.close_reason`` (default: ``reason``'s
        value). ``resumable``: the socket dropped (no close frame, a failed or timed-out send, no
        media) rather than the call ending; with ``resume_window_secs`` set the call is held for
        a reconnect instead (``_park``). Not called when our own pipeline ended the call (a close
        we started is no disconnect)."""
        text = text or reason.value
        state = self._lifecycle.state
        if state is CallState.HELD:
            if not resumable:  # the dropped socket's last word was a deliberate end after all
                await self._end_parked(text)
            return
        if resumable and self.resume_window_secs > 0 and self.verified and self.transferred_to is None:
            if state is CallState.OPEN or state is CallState.ABORTING:
                await self._park(reason, text)
                return
        if state is CallState.CLOSED:
            return
        if self.transferred_to is not None and state is not CallState.ABORTING:
            # The provider ended our stream because the call moved: end the pipeline gracefully.
            self._transition(CallState.CLOSED)
            self._note_close(CloseReason.TRANSFERRED, f"transferred to {self.transferred_to}")
            self._output.on_peer_gone()
            await self._input.push_frame(EndTaskFrame(reason="call transferred"), FrameDirection.UPSTREAM)
            return
        if state is CallState.ENDING:
            # We are ending the call (goodbye played, hang-up running): the provider's stop
            # or close is the expected answer, not the caller leaving.
            self._transition(CallState.CLOSED)
            self._note_close(reason, text)
            return
        self._transition(CallState.CLOSED)
        self._note_close(reason, text)
        self.log.info("= peer gone: %s", text)
        self._output.on_peer_gone()
        had_handler = self.has_event_handlers("on_client_disconnected")
        self.fire_once("on_client_disconnected")
        policy = self._params.cancel_on_disconnect
        if policy or (policy is None and not had_handler):
            await self._input.push_frame(
                CancelTaskFrame(reason=f"client disconnected: {text}"), FrameDirection.UPSTREAM
            )

    async def stream_stopped(self) -> None:
        """The provider said ``stop``: the call is over."""
        self._note_close(CloseReason.STOP, replace=True)
        await self.peer_gone(CloseReason.STOP)

    # --- resume: a dropped socket, a reconnect --------------------------------------------

    async def _send_failed_resumable(self, sender: asyncio.Task[Any] | None) -> None:
        """A send failed on a call that may resume: whether the peer hung up (a close frame) or
        the connection dropped is the receive loop's to tell, so give it a moment; if it cannot
        tell (a half-open socket), hold the call. The sender being the receive loop itself (an
        inline echo), it tells right after this returns."""
        receiver = self.watchdog.receiver
        if receiver is sender:
            return
        if receiver is not None and not receiver.done():
            await asyncio.wait({receiver}, timeout=SEND_FAILURE_VERDICT_SECS)
        await self.peer_gone(CloseReason.SEND_FAILED, resumable=True)

    async def _park(self, reason: CloseReason, text: str) -> None:
        """Hold the call for a reconnect: nothing is sent (state HELD is closed to every sender,
        the one read they already make), the output is stopped without a message (what was
        queued is dropped; what the bot produces meanwhile is dropped too), the old socket is
        let go, and a timer ends the call as a disconnect after ``resume_window_secs``."""
        self._held = (reason, text)
        self._transition(CallState.HELD)
        self.log.info("= socket lost (%s): holding the call %.1fs for a reconnect", text, self.resume_window_secs)
        ws = self._websocket
        self.release_socket()
        # While held the call is not over: a hang-up the bot asks for meanwhile is sent.
        self._peer_closed_before, self._input.peer_closed = self._input.peer_closed, False
        await self._output.on_detached()
        self._resume_timer = self.spawn(self._resume_deadline(self.resume_window_secs), "resume-window")
        self._call_event_handler("on_client_detached", text)
        if ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._params.ws_close_timeout):
                    await ws.close(code=1001, reason="connection lost")

    async def _resume_deadline(self, seconds: float) -> None:
        await self.sleep(seconds)
        if self.parked is not None:
            await self._end_parked(f"{self.parked}; no reconnect within {seconds:g}s")

    async def _end_parked(self, text: str) -> None:
        """The window passed (or the old socket said the call is over): end it as a disconnect."""
        held = self._held
        if held is None or self._lifecycle.state is not CallState.HELD:
            return
        self._held = None
        self._transition(CallState.ABORTING)  # closed already: let peer_gone do its part
        timer, self._resume_timer = self._resume_timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        self._note_close(*held)
        self._input.peer_closed = self._peer_closed_before
        await self.peer_gone(held[0], text)

    async def resume(self, websocket: WebSocket, handshake: Handshake) -> asyncio.Event | None:
        """Attach a reconnect's socket (already accepted, handshake read, token checked) to this
        held call: the new stream's serializer and pending messages replace the old ones, the
        pacer and playback marks start afresh (marks sent on the old socket are forgotten),
        and the receive loop runs on the new socket. Returns an event set once this socket is
        no longer the call's (the call ended, or it dropped and was swapped again); None if the
        call is not held or the new stream's media format differs (the caller refuses it)."""
        new = handshake.serializer
        old = self.serializer
        if self.parked is None or new is None:
            return None
        if (new.input_format, new.output_format) != (old.input_format, old.output_format):
            self.log.warning("! a reconnect with another media format cannot resume this call")
            return None
        timer, self._resume_timer = self._resume_timer, None
        if timer is not None:
            timer.cancel()
        await self._input.detach_socket()
        self._held = None
        self.resumes += 1
        self._websocket = websocket
        self.raw_receive = self._raw_send = None
        self._params.serializer = new
        self._socket_released = asyncio.Event()
        self._transition(CallState.OPEN)
        self.watchdog.reset()
        self.stats.close_reason = self.close_cause = None
        self.log.info("= reconnected: the call resumes on a new socket (resume %d)", self.resumes)
        if self.recorder is not None:
            self.recorder.resumed()
        self._output.on_resumed()
        self.use_raw_channel()
        self._input.attach_socket(handshake.pending)
        self.start_watchdog()
        self._call_event_handler("on_client_resumed", websocket)
        return self._socket_released

    def release_socket(self) -> None:
        """This socket is no longer the call's (the call ended, or it dropped)."""
        self._socket_released.set()

    async def session_timed_out(self) -> None:
        if self.closed:
            return
        had_handler = self.has_event_handlers("on_session_timeout")
        self.fire_once("on_session_timeout")
        if not had_handler:
            self.log.info("= session timeout with no handler: ending the call")
            await self._input.push_frame(EndTaskFrame(reason="session timeout"), FrameDirection.UPSTREAM)

    def protocol_error(self, exc: ProtocolError) -> None:
        key = str(exc).split(":", 1)[-1].strip()[:60]
        self.stats.protocol_errors[key] += 1
        if self.stats.protocol_error_count <= LOGGED_ERRORS_PER_CALL:
            self.log.warning("! protocol error (call continues): %s", exc)
        elif self.stats.protocol_error_count == LOGGED_ERRORS_PER_CALL + 1:
            self.log.warning("! more protocol errors: counting them silently from now on")

    async def abort(self, code: int, reason: CloseReason) -> None:
        """End the connection because of the peer (a limit tripped, no media): close with
        ``code``, then treat it like the peer leaving."""
        self._note_close(reason, replace=True)
        await self.close(code, reason)
        self._abort_after_close()
        # A silent peer is a connection that died without a word: a reconnect may follow.
        await self.peer_gone(reason, resumable=reason is CloseReason.NO_MEDIA)

    async def close(self, code: int = 1000, reason: CloseReason | str = "") -> None:
        """Close our side, bounded by ws_close_timeout; idempotent. ``reason``: a
        ``CloseReason``, or the application's own text (kept as ``CloseReason.CLOSED``)."""
        if self.closed:
            return
        self._transition(CallState.CLOSED)
        if isinstance(reason, CloseReason):
            self._note_close(reason)
        else:
            self._note_close(CloseReason.CLOSED, reason or f"closed {code}")
        if self._websocket.application_state != WebSocketState.CONNECTED:
            return
        try:
            async with asyncio.timeout(self._params.ws_close_timeout):
                await self._websocket.close(code=code, reason=reason[:120])
        except TimeoutError:
            self.log.debug("- close handshake exceeded %.1fs", self._params.ws_close_timeout)
        except Exception as exc:
            self.log.debug("- close failed: %s", type(exc).__name__)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str, *, finish: bool = False) -> asyncio.Task[Any]:
        """Start a task this transport owns. At cleanup, ``finish=True`` tasks (hang-up) get
        a bounded wait to complete; the rest (timers, loops) are cancelled at once."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        group = self._tasks if finish else self._timers
        group.add(task)
        task.add_done_callback(group.discard)
        return task

    def start_hangup(self) -> None:
        """Auto hang-up, once, in the background; only while the call may still be up."""
        if self._hangup_started:
            return
        self._hangup_started = True
        if self.transferred_to is not None:
            self._skip_hangup(HangupSkip.TRANSFERRED)
            return
        if self.close_cause in CALL_OVER or self._input.peer_closed:
            self._skip_hangup(HangupSkip.CALL_OVER)
            return
        if not self.hangup_allowed:
            self._skip_hangup(HangupSkip.NOT_VERIFIED)
            self.log.info("- auto hang-up skipped: the call id was not verified by a stream token")
            return
        request = self.serializer.hangup_request()
        if request is None:
            reason = self.serializer.hangup_skip_reason
            # The serializer's contract gives a sentence; an id it refused starts "invalid ".
            why = HangupSkip.INVALID_ID if (reason or "").startswith("invalid ") else HangupSkip.UNAVAILABLE
            self._skip_hangup(why, str(reason))
            if reason and "auto_hang_up is off" not in reason:
                self.log.warning("- auto hang-up skipped (%s); closing the stream ends the call", reason)
            return
        self._hangup_task = self.spawn(self._hangup(request), "hangup", finish=True)

    def begin_draining(self) -> None:
        """The output waits for the queued audio to play (``EndFrame``); the input reads on."""
        if self._lifecycle.state is CallState.OPEN:
            self._transition(CallState.DRAINING)

    def begin_ending(self) -> None:
        """We end the call: hang-up next, then the close; the provider's stop is no disconnect."""
        state = self._lifecycle.state
        if state is CallState.OPEN or state is CallState.DRAINING:
            self._transition(CallState.ENDING)

    async def wait_for_hangup(self, timeout: float) -> None:
        """Give a running hang-up up to ``timeout`` seconds before the socket closes, so the
        provider ends the call by its API (status completed) rather than by a dropped stream;
        the hang-up keeps running in the background if it takes longer."""
        task = getattr(self, "_hangup_task", None)
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=timeout)

    async def _hangup(self, request: Any) -> None:
        outcome = await perform_hangup(request, timeout=self._params.hangup_timeout_secs)
        self.stats.hangup = outcome.value

    async def cleanup(self) -> None:
        """Called by both processors' cleanup; the second call finds nothing left to do."""
        if self._lifecycle.state is CallState.HELD:
            self._held = None
            self._transition(CallState.CLOSED)
        await self.close(1000, CloseReason.PIPELINE_FINISHED)
        self.release_socket()
        timers = [t for t in self._timers if t is not asyncio.current_task()]
        for task in timers:
            task.cancel()
        if timers:
            await asyncio.wait(timers, timeout=1.0)
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=HANGUP_SHUTDOWN_SECS)
            for task in pending:
                task.cancel()
                self.log.warning("- abandoned background task %s at shutdown", task.get_name())
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        await self.cleanup_event_handlers()
