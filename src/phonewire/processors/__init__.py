"""Frame processors: the building blocks of a pipeline."""

from phonewire.processors.echo import EchoProcessor
from phonewire.processors.frame_processor import FrameProcessor, FrameProcessorSetup

__all__ = ["EchoProcessor", "FrameProcessor", "FrameProcessorSetup"]
