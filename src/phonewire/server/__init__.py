"""A ready-made FastAPI server for phonewire bots: webhooks, one media-stream route, limits."""

from phonewire.server.app import Bot, create_app
from phonewire.server.config import ServerConfig

__all__ = ["Bot", "ServerConfig", "create_app"]
