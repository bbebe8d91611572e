"""A FastAPI app running phonewire bots for the transport tests, recording what happened."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, WebSocket

from phonewire import FastAPIWebsocketParams, FastAPIWebsocketTransport, Pipeline, PipelineTask, read_handshake
from phonewire.exceptions import HandshakeError
from phonewire.frames import Frame, FrameDirection
from phonewire.pipeline import PipelineRunner
from phonewire.processors import EchoProcessor, FrameProcessor
from phonewire.transports import RawWebSocketMiddleware


class Recorder(FrameProcessor):
    """Passes every frame on and remembers it (both directions)."""

    def __init__(
        self,
        frames: list[tuple[Frame, FrameDirection]],
        changed: asyncio.Event | None = None,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.frames = frames
        self.changed = changed

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        self.frames.append((frame, direction))
        if self.changed is not None:
            self.changed.set()
        await self.push_frame(frame, direction)


@dataclass
class Call:
    transport: FastAPIWebsocketTransport | None = None
    task: PipelineTask | None = None
    frames: list[tuple[Frame, FrameDirection]] = field(default_factory=list)
    tail: list[tuple[Frame, FrameDirection]] = field(default_factory=list)
    events: list[tuple[str, Any, Any]] = field(default_factory=list)
    finished: bool = False
    error: BaseException | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_until(self, predicate: Callable[[Call], bool], timeout: float = 5.0) -> None:
        """Wait, event-driven, until ``predicate(self)`` holds (an event fired or the call ended)."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()

    async def wait_finished(self, timeout: float = 5.0) -> None:
        await self.wait_until(lambda c: c.finished, timeout)


def make_app(
    *,
    bot: Callable[[Call], FrameProcessor] | None = None,
    params: dict[str, Any] | None = None,
    serializer_kwargs: dict[str, Any] | None = None,
    handlers: tuple[str, ...] = ("on_client_connected",),
    on_transport: Callable[[Call], None] | None = None,
    providers: list[str] | None = ["twilio"],  # noqa: B006  (never mutated)
    handshake_timeout: float = 10.0,
    raw_channel: bool = False,
) -> tuple[FastAPI, list[Call]]:
    app = FastAPI()
    if raw_channel:
        app.add_middleware(RawWebSocketMiddleware)
    calls: list[Call] = []

    @app.websocket("/ws")
    async def ws_route(websocket: WebSocket) -> None:
        call = Call()
        calls.append(call)
        await websocket.accept()
        try:
            try:
                hs = await read_handshake(
                    websocket, providers=providers, timeout=handshake_timeout, **(serializer_kwargs or {})
                )
            except HandshakeError as exc:
                call.error = exc
                await websocket.close(exc.close_code, str(exc)[:100])
                return
            p = FastAPIWebsocketParams(
                audio_in_enabled=True, audio_out_enabled=True, serializer=hs.serializer, **(params or {})
            )
            transport = FastAPIWebsocketTransport(websocket, p, handshake=hs)
            call.transport = transport
            for name in handlers:
                transport.add_event_handler(name, _recorder(call, name))
            middle = bot(call) if bot else EchoProcessor()
            pipeline = Pipeline(
                [
                    transport.input(),
                    Recorder(call.frames, call.changed),
                    middle,
                    transport.output(),
                    Recorder(call.tail, call.changed),
                ]
            )
            call.task = PipelineTask(pipeline)
            if on_transport:
                on_transport(call)
            await PipelineRunner(handle_sigint=False, handle_sigterm=False).run(call.task)
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            call.finished = True
            call.changed.set()

    return app, calls


def _recorder(call: Call, name: str) -> Callable[..., Any]:
    async def handler(transport: Any, websocket: Any) -> None:
        call.events.append((name, transport, websocket))
        call.changed.set()

    return handler
