"""The demo server app: ``uvicorn phonewire.demo.app:app`` or ``phonewire serve``."""

from __future__ import annotations

import os

from fastapi import FastAPI

from phonewire.demo.bot import DemoBot
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.serializers.base import CallInfo
from phonewire.server import ServerConfig, create_app
from phonewire.transports.fastapi import FastAPIWebsocketTransport

__all__ = ["demo_bot", "make_app"]


async def demo_bot(transport: FastAPIWebsocketTransport, call: CallInfo) -> None:
    """Everything a bot needs: the transport's two ends around your processors."""
    max_secs = float(os.environ.get("PHONEWIRE_DEMO_MAX_CALL_SECS", "120"))
    task = PipelineTask(Pipeline([transport.input(), DemoBot(max_call_secs=max_secs), transport.output()]))
    await PipelineRunner(handle_sigint=False, handle_sigterm=False).run(task)


def make_app(config: ServerConfig | None = None) -> FastAPI:
    return create_app(demo_bot, config or ServerConfig(vad="silero"))


def __getattr__(name: str) -> FastAPI:
    # ``phonewire.demo.app:app`` builds the app lazily, so importing this module is cheap.
    if name == "app":
        return make_app()
    raise AttributeError(name)
