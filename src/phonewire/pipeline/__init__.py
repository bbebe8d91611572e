"""Pipelines: processors in a row, a task that runs them, a runner that handles signals."""

from phonewire.pipeline.pipeline import Pipeline
from phonewire.pipeline.runner import PipelineRunner, WorkerRunner
from phonewire.pipeline.task import PipelineParams, PipelineTask, PipelineWorker

__all__ = ["Pipeline", "PipelineParams", "PipelineRunner", "PipelineTask", "PipelineWorker", "WorkerRunner"]
