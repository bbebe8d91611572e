"""create_app's collector tuning while serving (server/app.py, docs/configuration.md): freeze
and thresholds at start-up, a timed full collection, the previous thresholds back at shutdown;
bad values refused when the app is built."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from phonewire.exceptions import ConfigurationError
from phonewire.server import ServerConfig, create_app
from phonewire.server.app import DEFAULT_GC_THRESHOLDS, gc_collect_secs_from_env, gc_thresholds_from_env
from support.server_harness import serve


async def _bot(transport: Any, info: Any) -> None:
    return None


def test_thresholds_and_the_timer_apply_while_serving_and_are_undone_at_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PHONEWIRE_GC_THRESHOLDS", "40000,15,9")
    monkeypatch.setenv("PHONEWIRE_GC_COLLECT_SECS", "0.05")
    before = gc.get_threshold()
    app = create_app(_bot, ServerConfig(vad=None, stream_scheme="ws"))
    assert gc.get_threshold() == before  # nothing changes until the server starts

    async def main() -> tuple[tuple[int, int, int], int]:
        loop = asyncio.get_running_loop()
        full = asyncio.Event()

        def seen(phase: str, info: dict[str, Any]) -> None:
            if phase == "stop" and info["generation"] == 2:
                loop.call_soon_threadsafe(full.set)

        async with serve(app, lifespan="on"):
            serving = gc.get_threshold()
            frozen = gc.get_freeze_count()
            gc.callbacks.append(seen)
            try:
                await asyncio.wait_for(full.wait(), 10)  # the timer's full collection
            finally:
                gc.callbacks.remove(seen)
        return serving, frozen

    try:
        serving, frozen = asyncio.run(main())
    finally:
        gc.unfreeze()
    assert serving == (40000, 15, 9) and frozen > 0
    assert gc.get_threshold() == before


def test_python_keeps_the_interpreter_thresholds_and_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PHONEWIRE_GC_THRESHOLDS", raising=False)
    monkeypatch.delenv("PHONEWIRE_GC_COLLECT_SECS", raising=False)
    assert gc_thresholds_from_env() == DEFAULT_GC_THRESHOLDS and gc_collect_secs_from_env() == 60.0
    monkeypatch.setenv("PHONEWIRE_GC_THRESHOLDS", "python")
    assert gc_thresholds_from_env() is None
    for bad in ("1,2", "a,b,c", "0,10,10", "700,-1,10"):
        monkeypatch.setenv("PHONEWIRE_GC_THRESHOLDS", bad)
        with pytest.raises(ConfigurationError):
            create_app(_bot, ServerConfig(vad=None))
    monkeypatch.setenv("PHONEWIRE_GC_THRESHOLDS", "python")
    for bad in ("-1", "soon", "inf", "nan"):
        monkeypatch.setenv("PHONEWIRE_GC_COLLECT_SECS", bad)
        with pytest.raises(ConfigurationError):
            create_app(_bot, ServerConfig(vad=None))
