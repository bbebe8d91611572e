"""Where recordings go: the ``RecordingStore`` interface and a local-directory backend.

Why an interface: an operator keeps recordings in a directory, a bucket or a compliance
archive; the recorder only needs "open a place for this call", "append audio", "finish with
the sidecar". Every sink method runs on the recording writer thread (``writer.py``), never on
the event loop, so a backend may block on disk or network as it likes - within reason: a slow
sink fills the writer's bounded queue and later chunks are dropped (and counted), not queued
without bound.
"""

from __future__ import annotations

import json
import os
import re
import wave
from pathlib import Path
from typing import Any, Protocol

__all__ = ["LocalDirectoryStore", "RecordingSink", "RecordingStore"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class RecordingSink(Protocol):
    """One call's recording, written chunk by chunk."""

    def write(self, frames: bytes) -> None:
        """Append interleaved s16le stereo frames (caller left, bot right)."""

    def close(self, sidecar: dict[str, Any]) -> None:
        """The call ended: finish the audio and store the JSON sidecar."""


class RecordingStore(Protocol):
    def open(self, name: str, sample_rate: int) -> RecordingSink:
        """A sink for a recording called ``name`` (provider, call id, time; file-name safe)."""
        ...


class _WavSink:
    def __init__(self, wav_path: Path, sidecar_path: Path, sample_rate: int) -> None:
        self.wav_path, self.sidecar_path = wav_path, sidecar_path
        self._wav = wave.open(str(wav_path), "wb")
        self._wav.setnchannels(2)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)

    def write(self, frames: bytes) -> None:
        self._wav.writeframesraw(frames)  # header sizes are patched once, at close

    def close(self, sidecar: dict[str, Any]) -> None:
        self._wav.close()
        tmp = self.sidecar_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(sidecar, indent=1, default=str))
        os.replace(tmp, self.sidecar_path)  # a sidecar is whole or absent


class LocalDirectoryStore:
    """``<dir>/<name>.wav`` and ``<dir>/<name>.json``; the directory is created if missing."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"LocalDirectoryStore({str(self.directory)!r})"

    def open(self, name: str, sample_rate: int) -> RecordingSink:
        self.directory.mkdir(parents=True, exist_ok=True)
        safe = _UNSAFE.sub("_", name)[:200] or "call"
        return _WavSink(self.directory / f"{safe}.wav", self.directory / f"{safe}.json", sample_rate)
