"""The server's optional pages: the browser softphone (``/softphone``) and the call console
(``/calls``). Both are off unless enabled (``ServerConfig.softphone``, ``console_token``);
static assets ship in the package under ``phonewire/server/static`` (no CDN, no build step).

``create_app`` calls ``install_pages``; to mount them in an app of your own, build a
``CallEvents``, add it to your ``CallRegistry``'s hooks, and include ``softphone_router`` /
``console_router`` and ``static_router``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Response

from phonewire.exceptions import ConfigurationError
from phonewire.server.call_events import CallEvents
from phonewire.server.config import ServerConfig
from phonewire.server.pages._common import static_response
from phonewire.server.pages.console import console_router
from phonewire.server.pages.softphone import softphone_router
from phonewire.telephony.tokens import StreamTokenSigner

__all__ = ["console_router", "install_pages", "softphone_router", "static_router"]


def static_router() -> APIRouter:
    """``/pages/static/<name>``: the pages' scripts, worklets and stylesheet (a fixed list)."""
    router = APIRouter()

    @router.get("/pages/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        return static_response(name)

    return router


def install_pages(app: FastAPI, config: ServerConfig, signer: StreamTokenSigner | None, calls: Any) -> None:
    """Mount the enabled pages on ``app`` and hook their ``CallEvents`` into ``calls``
    (a ``CallRegistry``); with neither enabled, nothing is added."""
    if not config.softphone and not config.console_token:
        return
    if config.softphone and not (config.softphone_token or config.console_token):
        raise ConfigurationError(
            "softphone=True needs a softphone key (PHONEWIRE_SOFTPHONE_TOKEN) or a console token: "
            "without one the page would be an open source of stream tokens"
        )
    events = CallEvents()
    calls.hooks.append(events)
    app.state.call_events = events
    app.include_router(static_router())
    if config.softphone:
        app.include_router(softphone_router(config, events, signer))
    if config.console_token:
        app.include_router(console_router(config, events))


def page_keys(host: str, port: int, workers: int = 1) -> list[str]:
    """For ``phonewire serve --softphone/--console`` (PHONEWIRE_SOFTPHONE/_CONSOLE set): make
    the missing keys (random, in the environment, so every worker shares them) and return the
    lines telling the operator where the pages are. Keys given in the environment are never
    echoed; a made one is shown once, on the terminal (the softphone's in the URL fragment,
    which browsers do not send to the server, so it reaches no access log)."""
    import os
    import secrets

    lines: list[str] = []
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    base = f"http://{shown}:{port}"
    if os.environ.get("PHONEWIRE_CONSOLE") and not os.environ.get("PHONEWIRE_CONSOLE_TOKEN"):
        os.environ["PHONEWIRE_CONSOLE_TOKEN"] = secrets.token_urlsafe(24)
        lines.append(f"console: {base}/calls  (user: any, password: {os.environ['PHONEWIRE_CONSOLE_TOKEN']})")
    elif os.environ.get("PHONEWIRE_CONSOLE"):
        lines.append(f"console: {base}/calls  (password: PHONEWIRE_CONSOLE_TOKEN)")
    if os.environ.get("PHONEWIRE_SOFTPHONE"):
        if not os.environ.get("PHONEWIRE_SOFTPHONE_TOKEN"):
            os.environ["PHONEWIRE_SOFTPHONE_TOKEN"] = secrets.token_urlsafe(24)
            lines.append(f"softphone: {base}/softphone#key={os.environ['PHONEWIRE_SOFTPHONE_TOKEN']}")
        else:
            lines.append(f"softphone: {base}/softphone  (key: PHONEWIRE_SOFTPHONE_TOKEN)")
    if lines and workers > 1:
        lines.append("note: each worker process shows only its own calls; serve the pages with --workers 1")
    return lines
