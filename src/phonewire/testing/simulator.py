"""The call simulator: a fake telephony provider that calls a bot over WebSocket.

It opens the bot's WebSocket exactly as the provider would, streams the caller's audio on a
real-time 20 ms clock (silence between utterances, as a phone does), plays the bot's audio
on a simulated handset (``Playout``), echoes marks when their audio has played, honours
``clear``, and reports what a caller would have experienced (``CallReport``).

Three tasks run per call, all owned here and cancelled on exit:

* the send loop: one tick per packet, anchored to the start time (``t0 + (k + 1) * 20 ms``,
  so a late tick is followed by catch-up, never by drift); it runs the script, polls the
  playout for due marks and enforces the duration limits;
* the receive loop: feeds bot messages through the provider's parser into the playout;
* the uplink: delivers outgoing messages with network impairments applied.

With ``NetworkConditions(disconnect_at_s=..., reconnect_after_s=...)`` a fourth, the
reconnect, drops the socket mid-call and opens a new one after the outage (a new receive
loop then reads it); messages sent while no socket is up are lost, as on a dead link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from phonewire.exceptions import ConfigurationError
from phonewire.testing.fake_api import FakeProviderAPI
from phonewire.testing.network import NetworkConditions, Uplink
from phonewire.testing.playout import AUDIBLE_DBFS, Playout, audible_intervals
from phonewire.testing.providers import create_provider
from phonewire.testing.providers.base import (
    Clear,
    Mark,
    Message,
    PlayAudio,
    ProtocolViolation,
    ProviderClient,
    SendDTMF,
    ServerCommand,
)
from phonewire.testing.recording import CallRecorder
from phonewire.testing.report import (
    CallReport,
    Hangup,
    ProgressSnapshot,
    Violation,
    measure_barge_ins,
    measure_turns,
)
from phonewire.testing.script import CallerView, ScriptRunner, Step, default_script

__all__ = ["CallSimulator", "simulate_call"]

logger = logging.getLogger("phonewire.testing")

#: Close codes that mean the bot ended the call on purpose (1005: a close frame without a code).
_NORMAL_CLOSE = (1000, 1001, 1005)
_PROGRESS_EVERY_S = 0.25
_DRAIN_TIMEOUT_S = 2.0  # time allowed for queued media + stop to leave before closing
_CLOSE_TIMEOUT_S = 2.0
_STUCK_MARGIN_S = 10.0  # the send loop enforces max_duration; this only guards against bugs


class CallSimulator:
    """One simulated call. ``await CallSimulator(url).run()`` returns a ``CallReport``.

    See ``simulate_call`` for the arguments; ``provider`` may also be a ready
    ``ProviderClient`` (to fix call IDs or add handshake signing).
    """

    def __init__(
        self,
        url: str,
        *,
        provider: str | ProviderClient = "twilio",
        script: Sequence[Step] | None = None,
        network: NetworkConditions | None = None,
        record_path: str | Path | None = None,
        custom_parameters: Mapping[str, Any] | None = None,
        max_duration_s: float = 60.0,
        progress: Callable[[ProgressSnapshot], None] | None = None,
        headers: Mapping[str, str] | None = None,
        api: FakeProviderAPI | None = None,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if max_duration_s <= 0:
            raise ConfigurationError("max_duration_s must be positive")
        self.url = url
        self.provider = _provider(provider, custom_parameters)
        self.script = list(script) if script is not None else default_script()
        self.network = network or NetworkConditions()
        self.record_path = Path(record_path) if record_path is not None else None
        self.max_duration_s = max_duration_s
        self.progress = progress
        self.headers = dict(headers or {})
        self.api = api
        self.connect_timeout_s = connect_timeout_s
        fmt = self.provider.wire_format
        self.packet_s = self.provider.packet_ms / 1000.0
        self.report = CallReport(self.provider.name, url, call_id=self.provider.call_id)
        self.report.stream_id = self.provider.stream_id
        self.caller = CallerView(fmt.sample_rate, self.packet_s)
        self.runner = ScriptRunner(self.script, self.caller)
        self.recorder = CallRecorder(fmt.sample_rate, max_duration_s) if self.record_path else None
        self._silence = bytes(2 * self.provider.samples_per_packet)
        self._clear_times: list[float] = []
        self._ended: asyncio.Event | None = None
        self._end_at: float | None = None
        self._abort = False
        self._ws: ClientConnection | None = None
        self._playout: Playout | None = None
        self._uplink: Uplink | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._link_down = False
        self._dropped = False
        #: Times (s into the call) the simulated caller reconnected after a drop.
        self.reconnected_at: list[float] = []

    # --- public -----------------------------------------------------------------------------

    async def run(self) -> CallReport:
        """Make the call and return its report. Never raises for call failures: they end up
        in ``report.errors`` with ``completed`` False. One call per instance."""
        if self._ws is not None:
            raise RuntimeError("a CallSimulator makes one call; create another for the next")
        self.report.warnings += self.provider.url_warnings(self.url)
        ws = await self._connect()
        if ws is None:
            return self.report
        self._ws = ws
        try:
            if await self._open():
                await self._call()
        finally:
            if self._abort or self._end_at is None:
                (self._ws or ws).transport.abort()  # cancelled or failed midway: leave nothing open
        if self._playout is not None:
            self._write_report()
        return self.report

    # --- connecting ---------------------------------------------------------------------------

    async def _connect(self) -> ClientConnection | None:
        headers = {**self.provider.upgrade_headers(self.url), **self.headers}
        try:
            return await connect(
                self.url,
                additional_headers=headers,
                compression=None,
                open_timeout=self.connect_timeout_s,
                close_timeout=_CLOSE_TIMEOUT_S,
                ping_interval=None,
                proxy=None if _is_loopback(self.url) else True,  # True: honour *_proxy variables
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            self.report.end_reason = "could not connect"
            self.report.errors.append(f"WebSocket handshake with {self.url} failed: {exc!r}")
            return None

    # --- the call ----------------------------------------------------------------------------

    async def _open(self) -> bool:
        """Send the provider's opening messages; the call's time zero is right after them."""
        try:
            for message in self.provider.opening_messages():
                await self._send(message)
        except ConnectionClosed as exc:
            self.report.end_reason = "the bot closed the WebSocket before the call started"
            self.report.errors.append(f"{self.report.end_reason}: {exc}")
            self.report.close_code = exc.rcvd.code if exc.rcvd else None
            return False
        self._ended = asyncio.Event()
        self._playout = Playout(self.provider.wire_format.sample_rate)
        self._uplink = Uplink(self.network, self._send, self._playout.now)
        return True

    async def _call(self) -> None:
        assert self._ended is not None and self._uplink is not None
        if self.api is not None:
            self.api.register_call(self.provider.call_id, self._on_rest_hangup, self._on_rest_transfer)
        tasks = self._tasks
        tasks += [
            asyncio.create_task(self._guard(self._send_loop(), "send loop")),
            asyncio.create_task(self._guard(self._receive_loop(), "receive loop")),
            asyncio.create_task(self._guard(self._uplink.run(), "uplink")),
        ]
        try:
            async with asyncio.timeout(self.max_duration_s + _STUCK_MARGIN_S):
                await self._ended.wait()
        except TimeoutError:
            self._finish("the simulator stopped responding", "none", completed=False, error=True)
        finally:
            if self.api is not None:
                self.api.unregister_call(self.provider.call_id)
            await self._hang_up(tasks)

    async def _guard(self, coroutine: Any, name: str) -> None:
        """Run one of the call's tasks; a bug in it ends the call instead of hanging it."""
        try:
            await coroutine
        except ConnectionClosed:
            return  # the receive loop reports the close
        except Exception as exc:
            logger.exception("! %s failed", name)
            self._finish(f"internal error in the {name}: {exc!r}", "none", completed=False, error=True)

    def _finish(self, reason: str, hangup: Hangup, *, completed: bool, error: bool = False) -> None:
        """Record how the call ended; the first ending wins."""
        if self._end_at is not None or self._ended is None or self._playout is None:
            return
        self._end_at = self._playout.now()
        self.report.end_reason = reason
        self.report.hangup = hangup
        self.report.completed = completed
        if error:
            self.report.errors.append(reason)
        self._ended.set()

    async def _hang_up(self, tasks: list[asyncio.Task[None]]) -> None:
        """Stop sending, say goodbye the way the provider would, and close."""
        assert self._ws is not None
        tasks[0].cancel()  # the send loop: no more media
        if self._abort:
            self._ws.transport.abort()
        elif self.report.hangup in ("caller", "rest", "transferred"):
            await self._send_stop()
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            async with asyncio.timeout(_CLOSE_TIMEOUT_S + 1):
                await (self._ws.wait_closed() if self._abort else self._ws.close())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.report.close_code = self._ws.close_code

    async def _send_stop(self) -> None:
        assert self._uplink is not None
        stop = self.provider.stop_message()
        if stop is not None:
            self._uplink.submit(stop, media=False)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_DRAIN_TIMEOUT_S):
                await self._uplink.drain()

    async def _send(self, message: Message) -> None:
        ws = self._ws
        assert ws is not None
        if self._link_down:
            return  # no socket during a simulated outage: the message is lost
        try:
            await ws.send(message)
        except ConnectionClosed:
            if self._link_down or ws is not self._ws:
                return  # the socket this was meant for was dropped on purpose
            raise
        self.report.messages_sent += 1

    # --- sending -----------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        """One tick per packet, on deadlines anchored to the call's start."""
        assert self._playout is not None
        t0 = time.monotonic() - self._playout.now()
        next_progress = 0.0
        k = 0
        while True:
            delay = t0 + (k + 1) * self.packet_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._limits_reached((k + 1) * self.packet_s) or not self._tick(k):
                return
            if self.progress is not None and self._playout.now() >= next_progress:
                next_progress = self._playout.now() + _PROGRESS_EVERY_S
                self._report_progress()
            k += 1

    def _limits_reached(self, t_s: float) -> bool:
        disconnect_at = self.network.disconnect_at_s
        if disconnect_at is not None and t_s >= disconnect_at and self.network.reconnect_after_s is not None:
            if not self._dropped:
                self._dropped = True
                self._drop_and_reconnect(self.network.reconnect_after_s)
        elif disconnect_at is not None and t_s >= disconnect_at:
            self._abort = True
            self._finish(
                f"simulated network disconnect at {disconnect_at:g} s (socket dropped, no close frame)",
                "none",
                completed=False,
            )
            return True
        if t_s > self.max_duration_s:
            reason = f"max duration {self.max_duration_s:g} s reached; the caller hung up"
            self._finish(reason, "caller", completed=False, error=True)
            return True
        return False

    def _tick(self, k: int) -> bool:
        """Produce and send packet ``k``; False once the caller hangs up."""
        assert self._playout is not None and self._uplink is not None
        self._echo(self._playout.poll())
        t_s = k * self.packet_s
        heard = self._playout.level_dbfs(t_s - self.packet_s, t_s) > AUDIBLE_DBFS
        self.caller.hear(t_s, heard)
        packet = self.runner.next_packet()
        if packet.hangup:
            self._finish("the caller hung up (script finished)", "caller", completed=True)
            return False
        for digit in packet.dtmf:
            self._uplink.submit(self.provider.dtmf_message(digit), media=False)
            self.report.dtmf_sent += 1
        pcm = packet.pcm or self._silence
        self._uplink.submit(self.provider.media_message(self.provider.encode(pcm)), media=True)
        self.report.audio_sent_s += len(pcm) / (2 * self.provider.wire_format.sample_rate)
        if self.recorder is not None:
            self.recorder.add_caller(pcm)
        return True

    def _echo(self, names: list[str]) -> None:
        assert self._uplink is not None
        for name in names:
            self._uplink.submit(self.provider.mark_echo(name), media=False)
            self.report.marks_echoed += 1

    def _report_progress(self) -> None:
        assert self._playout is not None and self.progress is not None
        snapshot = ProgressSnapshot(
            elapsed_s=self._playout.now(),
            audio_sent_s=self.report.audio_sent_s,
            audio_received_s=self._playout.received_s,
            bot_speaking=self.caller.bot_audible,
            state=self.runner.describe(),
        )
        try:
            self.progress(snapshot)
        except Exception as exc:  # a broken display must not break the call
            self.report.errors.append(f"progress callback failed and was disabled: {exc!r}")
            self.progress = None

    # --- a dropped socket, a reconnect -------------------------------------------------------

    def _drop_and_reconnect(self, after_s: float) -> None:
        """Cut the socket without a close frame; reconnect ``after_s`` later (its own task)."""
        assert self._ws is not None and self._playout is not None
        self._link_down = True
        self._ws.transport.abort()
        self._playout.clear()  # the stream is gone: nothing more plays, pending marks are moot
        self._tasks.append(asyncio.create_task(self._guard(self._reconnect(after_s), "reconnect")))

    async def _reconnect(self, after_s: float) -> None:
        assert self._playout is not None
        await asyncio.sleep(after_s)  # the simulated outage itself
        ws = await self._connect()
        if ws is None:
            self._finish("could not reconnect after the simulated drop", "none", completed=False, error=True)
            return
        try:
            for message in self.provider.opening_messages():
                await ws.send(message)
        except ConnectionClosed as exc:
            ws.transport.abort()
            self._finish(f"the bot refused the reconnect: {exc}", "socket_closed", completed=False, error=True)
            return
        self._ws = ws
        self._link_down = False
        self.reconnected_at.append(self._playout.now())
        self._tasks.append(asyncio.create_task(self._guard(self._receive_loop(), "receive loop")))

    # --- receiving ---------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        ws = self._ws
        assert ws is not None
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                self.report.messages_received += 1
                if self._end_at is None:
                    for command in self.provider.parse_server_message(message):
                        self._apply(command)
        if ws is self._ws and not self._link_down:
            self._on_socket_closed()  # not the socket dropped on purpose

    def _apply(self, command: ServerCommand) -> None:
        assert self._playout is not None and self._uplink is not None
        if isinstance(command, PlayAudio):
            self._playout.push_audio(command.pcm)
        elif isinstance(command, Mark):
            self.report.marks_sent_by_server += 1
            self._echo(self._playout.push_mark(command.name))
        elif isinstance(command, Clear):
            self.report.clears_received += 1
            self._clear_times.append(self._playout.now())
            pending = self._playout.clear()
            if self.provider.echo_marks_on_clear:
                self._echo(pending)
            ack = self.provider.clear_ack()
            if ack is not None:
                self._uplink.submit(ack, media=False)
        elif isinstance(command, SendDTMF):
            self.report.dtmf_received += command.digits
        elif isinstance(command, ProtocolViolation):
            violation = Violation(self._playout.now(), command.code, command.reason)
            self.report.protocol_violations.append(violation)

    def _on_socket_closed(self) -> None:
        assert self._ws is not None
        code = self._ws.close_code
        if code in _NORMAL_CLOSE:
            self._finish(f"the bot closed the WebSocket (code {code})", "socket_closed", completed=True)
        else:
            reason = self._ws.close_reason or "no close frame"
            self._finish(
                f"the WebSocket closed abnormally (code {code}: {reason})",
                "socket_closed",
                completed=False,
                error=True,
            )

    def _on_rest_hangup(self) -> None:
        """The fake API got a hang-up for this call: the provider ends it, like Twilio."""
        self._finish("the bot hung up over the REST API", "rest", completed=True)

    def _on_rest_transfer(self, target: str) -> None:
        """The fake API accepted a transfer: the call leaves the bot (the provider stops the stream)."""
        self.report.transferred_to = target
        self._finish(f"transferred to {target}", "transferred", completed=True)

    # --- the report --------------------------------------------------------------------------

    def _write_report(self) -> None:
        assert self._playout is not None
        end = self._end_at if self._end_at is not None else self._playout.now()
        playout, report = self._playout, self.report
        report.duration_s = end
        report.audio_received_s = playout.received_s
        report.audio_played_s = playout.played_s(end)
        report.underruns, report.underrun_gap_ms = playout.underruns, playout.underrun_gap_ms
        heard = audible_intervals(playout.spans, until_s=end)
        report.turns = measure_turns(self.caller.log.utterances, heard)
        report.barge_ins = measure_barge_ins(self.caller.log.utterances, heard, self._clear_times, end)
        report.warnings += self.caller.log.notes
        if self.api is not None and self.api.hangups(self.provider.call_id) and report.hangup != "transferred":
            # The bot asked the provider to hang up; end_reason says what actually ended the call.
            report.hangup = "rest"
        if playout.dropped_s:
            report.warnings.append(
                f"{playout.dropped_s:.1f} s of bot audio dropped: more than {playout.max_queued_s:g} s was queued"
            )
        if self._uplink is not None:
            report.media_dropped = self._uplink.stats.media_dropped
            report.messages_reordered = self._uplink.stats.messages_reordered
        if self.recorder is not None and self.record_path is not None:
            try:
                self.recorder.write(self.record_path, playout.spans, end)
                report.recording_path = str(self.record_path)
            except OSError as exc:
                report.errors.append(f"could not write the recording: {exc}")


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


def _provider(provider: str | ProviderClient, custom_parameters: Mapping[str, Any] | None) -> ProviderClient:
    if isinstance(provider, ProviderClient):
        if custom_parameters:
            raise ConfigurationError("pass custom_parameters to the ProviderClient you built, not here")
        return provider
    return create_provider(provider, custom_parameters=custom_parameters)


async def simulate_call(
    url: str,
    *,
    provider: str | ProviderClient = "twilio",
    script: Sequence[Step] | None = None,
    network: NetworkConditions | None = None,
    record_path: str | Path | None = None,
    custom_parameters: Mapping[str, Any] | None = None,
    max_duration_s: float = 60.0,
    progress: Callable[[ProgressSnapshot], None] | None = None,
    headers: Mapping[str, str] | None = None,
    api: FakeProviderAPI | None = None,
    connect_timeout_s: float = 10.0,
) -> CallReport:
    """Call the bot at ``url`` as ``provider`` would, in real time, and report what happened.

    Args:
        url: the bot's WebSocket URL (``ws://`` or ``wss://``).
        provider: a provider name ("twilio") or a ready ``ProviderClient``.
        script: the caller's steps; ``default_script()`` if None.
        network: impairments on the caller -> bot direction; none if None.
        record_path: write a stereo WAV there (caller left, bot right, playout timeline).
        custom_parameters: delivered in the provider's start message (Twilio
            ``start.customParameters``).
        max_duration_s: the caller hangs up after this long; the call counts as not completed.
        progress: called a few times a second with a ``ProgressSnapshot``.
        headers: extra handshake headers (added after the provider's own).
        api: a running ``FakeProviderAPI``; REST hang-ups for this call then end it.
        connect_timeout_s: bound on the TCP connect + WebSocket handshake.

    Returns:
        The ``CallReport``. Failures (refused handshake, abnormal close, duration exceeded)
        are reported in it with ``completed`` False rather than raised.
    """
    simulator = CallSimulator(
        url,
        provider=provider,
        script=script,
        network=network,
        record_path=record_path,
        custom_parameters=custom_parameters,
        max_duration_s=max_duration_s,
        progress=progress,
        headers=headers,
        api=api,
        connect_timeout_s=connect_timeout_s,
    )
    return await simulator.run()
