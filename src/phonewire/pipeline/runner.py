"""PipelineRunner: runs a task until it ends, turning SIGINT/SIGTERM into a cancel."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from phonewire.pipeline.task import PipelineTask

__all__ = ["PipelineRunner", "WorkerRunner"]

logger = logging.getLogger("phonewire.pipeline")


class PipelineRunner:
    """Signals are handled only where the loop allows it (the main thread of the main
    loop); inside a server the server owns the signals and the runner just awaits.

    SIGTERM is opt-in, as in Pipecat: a runner inside uvicorn that took SIGTERM would leave
    the server running after the deploy asked it to stop.
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        handle_sigint: bool = True,
        handle_sigterm: bool = False,
        force_gc: bool = False,
    ) -> None:
        #: Pipecat's ``force_gc``: a full collection after each run, so a long-lived server
        #: returns a finished call's cycles at once rather than at the next threshold.
        self.force_gc = force_gc
        self.name = name or "PipelineRunner"
        self._signals = [s for s, on in ((signal.SIGINT, handle_sigint), (signal.SIGTERM, handle_sigterm)) if on]
        self._tasks: list[PipelineTask] = []

    async def run(self, task: PipelineTask) -> None:
        self._tasks.append(task)
        installed = self._install(asyncio.get_running_loop())
        try:
            await task.run()
        finally:
            self._tasks.remove(task)
            for sig in installed:
                asyncio.get_running_loop().remove_signal_handler(sig)
            if self.force_gc:
                gc.collect()

    async def cancel(self) -> None:
        for task in list(self._tasks):
            await task.cancel("runner cancelled")

    def _install(self, loop: asyncio.AbstractEventLoop) -> list[signal.Signals]:
        installed = []
        for sig in self._signals:
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            installed.append(sig)
        return installed

    def _on_signal(self, sig: signal.Signals) -> None:
        logger.warning("= %s received: cancelling %d pipeline(s)", sig.name, len(self._tasks))
        for task in list(self._tasks):
            asyncio.get_running_loop().create_task(task.cancel(sig.name))


#: Pipecat 1.14's name for the runner.
WorkerRunner = PipelineRunner
