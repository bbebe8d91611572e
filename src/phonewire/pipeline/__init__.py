"""Pipelines: processors in a row, a task that runs them, a runner that handles signals."""

from phonewire.pipeline.pipeline import Pipeline
from phonewire.pipeline.runner import PipelineRunner
from phonewire.pipeline.task import PipelineParams, PipelineTask

__all__ = ["Pipeline", "PipelineParams", "PipelineRunner", "PipelineTask"]
