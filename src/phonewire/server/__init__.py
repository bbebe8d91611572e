"""A ready-made FastAPI server for phonewire bots: webhooks, one media-stream route, limits."""

from phonewire.server.app import Bot, create_app
from phonewire.server.config import ServerConfig
from phonewire.server.web_server import uvicorn_config_kwargs

__all__ = ["Bot", "ServerConfig", "create_app", "uvicorn_config_kwargs"]
