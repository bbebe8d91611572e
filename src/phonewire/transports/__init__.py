"""Transports: where frames meet a WebSocket."""

from phonewire.transports.asgi import RawWebSocketMiddleware
from phonewire.transports.fastapi import FastAPIWebsocketTransport
from phonewire.transports.input import FastAPIWebsocketInputTransport
from phonewire.transports.output import FastAPIWebsocketOutputTransport
from phonewire.transports.params import FastAPIWebsocketParams, TransportParams

__all__ = [
    "FastAPIWebsocketInputTransport",
    "FastAPIWebsocketOutputTransport",
    "FastAPIWebsocketParams",
    "FastAPIWebsocketTransport",
    "RawWebSocketMiddleware",
    "TransportParams",
]
