"""phonewire: phone calls to real-time voice bots over WebSockets.

The names most bots need are importable from here; everything else lives in its module.
"""

from phonewire.pipeline import Pipeline, PipelineParams, PipelineRunner, PipelineTask
from phonewire.processors import FrameProcessor
from phonewire.serializers.twilio import TwilioFrameSerializer
from phonewire.telephony.handshake import Handshake, read_handshake
from phonewire.transports import FastAPIWebsocketParams, FastAPIWebsocketTransport, TransportParams

__version__ = "0.1.0"

__all__ = [
    "FastAPIWebsocketParams",
    "FastAPIWebsocketTransport",
    "FrameProcessor",
    "Handshake",
    "Pipeline",
    "PipelineParams",
    "PipelineRunner",
    "PipelineTask",
    "TransportParams",
    "TwilioFrameSerializer",
    "read_handshake",
]
