"""Pipecat's own virtual environment: pipecat-ai 1.14.0 plus our exact web stack.

Created once under ``.bench-cache/pipecat-venv`` (never committed) with the ordinary pip
client. uvicorn, uvloop and httptools are pinned to the versions phonewire runs with, so both
servers sit on the identical WebSocket stack and the ratios measure the frameworks.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["PIPECAT_REQUIREMENT", "pipecat_python", "ensure_pipecat_venv"]

#: The echo bot needs ``websocket``; the cascaded agent (``pipecat/cascaded_agent.py``) the services
#: and Silero. One venv serves both.
PIPECAT_REQUIREMENT = "pipecat-ai[websocket,deepgram,cartesia,openai,silero]==1.14.0"
_STACK = ("uvicorn", "uvloop", "httptools", "psutil")


def _requirements() -> list[str]:
    reqs = [PIPECAT_REQUIREMENT]
    for name in _STACK:
        try:
            reqs.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            reqs.append(name)
    return reqs


def pipecat_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def ensure_pipecat_venv(venv: Path, *, log: object = print) -> Path:
    """Create (or reuse) the venv; returns its python. Reinstalls if the requirements changed."""
    reqs = _requirements()
    marker = venv / "phonewire-bench-requirements.txt"
    python = pipecat_python(venv)
    if python.exists() and marker.exists() and marker.read_text().split() == reqs:
        return python
    log(f"= creating Pipecat's virtual environment in {venv} ({', '.join(reqs)}); a few minutes")  # type: ignore[operator]
    venv.parent.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=False)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *reqs], check=True)
    marker.write_text("\n".join(reqs) + "\n")
    return python
