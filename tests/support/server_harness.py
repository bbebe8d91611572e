"""Run an ASGI app under a real uvicorn server on 127.0.0.1 inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn


@contextlib.asynccontextmanager
async def serve(app: Any, **overrides: Any) -> AsyncIterator[str]:
    """Yield ``"127.0.0.1:PORT"`` while ``app`` is served; stops the server on exit.

    ``overrides`` are uvicorn.Config arguments, e.g. ``**uvicorn_config_kwargs(config)``."""
    settings: dict[str, Any] = {
        "ws": "websockets-sansio",
        "ws_per_message_deflate": False,
        "lifespan": "off",
        "log_level": "warning",
        "loop": "asyncio",
        "timeout_graceful_shutdown": 2,
        **overrides,
    }
    config = uvicorn.Config(app, host="127.0.0.1", port=0, **settings)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.get_running_loop().create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110  (uvicorn exposes only a flag, no event)
            await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task
