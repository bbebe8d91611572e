"""Call recording: a stereo WAV per call (caller left, bot right, as the caller heard it) and
a JSON sidecar (call metadata, turns with latency stages, transcript notes), written by a
writer thread from bounded chunks. ``ServerConfig(recording=RecordingConfig(dir=...))``
records every call; ``all_calls=False`` and ``transport.start_recording()`` record some.
"""

from phonewire.recording.hook import RecordingConfig, RecordingHook, RecordingTap, start_recording
from phonewire.recording.store import LocalDirectoryStore, RecordingSink, RecordingStore
from phonewire.recording.timeline import CallRecording
from phonewire.recording.writer import RecordingWriter

__all__ = [
    "CallRecording",
    "LocalDirectoryStore",
    "RecordingConfig",
    "RecordingHook",
    "RecordingSink",
    "RecordingStore",
    "RecordingTap",
    "RecordingWriter",
    "start_recording",
]
