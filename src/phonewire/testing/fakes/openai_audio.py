"""Synthetic speech for the fake TTS, WAV framing, and multipart parsing for the fake STT.

Sans-I/O. The synthetic voice exists so tests can *measure* audio: every word is one tone burst
whose length is ``len(word) * ms_per_char`` (scaled by ``1/speed``), words are separated by
``word_gap_ms`` of digital silence, and there is no leading or trailing silence. So the byte
count of ``/audio/speech`` output is predictable from the text (``speech_duration_ms``), and a
test that knows how much audio a caller heard can say which words they heard (``word_spans``),
which is what "context keeps the heard text, to the word" is tested with.

Multipart parsing uses the stdlib ``email`` parser (no python-multipart dependency); the
caller enforces the body-size cap before parsing.
"""

from __future__ import annotations

import email.parser
import email.policy
import struct
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MultipartError",
    "SyntheticVoice",
    "UploadedFile",
    "WordSpan",
    "parse_multipart",
    "speech_duration_ms",
    "wav_header",
    "word_spans",
]

SAMPLE_RATE = 24000


@dataclass(frozen=True, slots=True)
class WordSpan:
    """Where one word sits in the synthetic audio, in ms from its first sample."""

    word: str
    start_ms: float
    end_ms: float

    @property
    def start_byte(self) -> int:
        return int(round(self.start_ms * SAMPLE_RATE / 1000)) * 2

    @property
    def end_byte(self) -> int:
        return int(round(self.end_ms * SAMPLE_RATE / 1000)) * 2


@dataclass(frozen=True, slots=True)
class SyntheticVoice:
    """Deterministic speech-like PCM16 mono audio at ``sample_rate`` (OpenAI's pcm is 24 kHz)."""

    ms_per_char: float = 65.0
    word_gap_ms: float = 80.0
    sample_rate: int = SAMPLE_RATE
    amplitude: float = 0.3

    def _samples(self, ms: float, speed: float) -> int:
        return int(round(ms * self.sample_rate / 1000 / speed))

    def _layout(self, text: str, speed: float) -> list[tuple[str, int, int]]:
        """(word, first sample, sample count) per word."""
        if not 0.25 <= speed <= 4.0:
            raise ValueError("speed must be between 0.25 and 4.0")
        layout: list[tuple[str, int, int]] = []
        cursor = 0
        gap = self._samples(self.word_gap_ms, speed)
        for i, word in enumerate(text.split()):
            if i:
                cursor += gap
            n = self._samples(len(word) * self.ms_per_char, speed)
            layout.append((word, cursor, n))
            cursor += n
        return layout

    def word_spans(self, text: str, speed: float = 1.0) -> list[WordSpan]:
        to_ms = 1000 / self.sample_rate
        return [WordSpan(w, start * to_ms, (start + n) * to_ms) for w, start, n in self._layout(text, speed)]

    def total_samples(self, text: str, speed: float = 1.0) -> int:
        layout = self._layout(text, speed)
        return layout[-1][1] + layout[-1][2] if layout else 0

    def duration_ms(self, text: str, speed: float = 1.0) -> float:
        return self.total_samples(text, speed) * 1000 / self.sample_rate

    def byte_length(self, text: str, speed: float = 1.0) -> int:
        return self.total_samples(text, speed) * 2

    def heard_words(self, text: str, heard_ms: float, speed: float = 1.0) -> list[str]:
        """The words fully played within the first ``heard_ms`` of the audio."""
        return [s.word for s in self.word_spans(text, speed) if s.end_ms <= heard_ms + 1e-9]

    def synthesize(self, text: str, speed: float = 1.0) -> bytes:
        """PCM16 little-endian. Each word: a two-partial tone at a pitch derived from the word
        (so different words sound different), with 5 ms ramps so bursts do not click."""
        out = np.zeros(self.total_samples(text, speed), dtype=np.float32)
        ramp = max(1, self.sample_rate // 200)
        for word, start, n in self._layout(text, speed):
            if n == 0:
                continue
            f0 = 110.0 + (zlib.crc32(word.encode()) % 160)
            t = np.arange(n, dtype=np.float32) / self.sample_rate
            burst = np.sin(2 * np.pi * f0 * t) + 0.5 * np.sin(2 * np.pi * 2 * f0 * t)
            envelope = np.ones(n, dtype=np.float32)
            r = min(ramp, n // 2)
            if r:
                envelope[:r] = np.linspace(0.0, 1.0, r, dtype=np.float32)
                envelope[n - r :] = np.linspace(1.0, 0.0, r, dtype=np.float32)
            out[start : start + n] = burst * envelope * (self.amplitude / 1.5)
        return (out * 32767).astype("<i2").tobytes()


DEFAULT_VOICE = SyntheticVoice()


def speech_duration_ms(text: str, speed: float = 1.0, voice: SyntheticVoice = DEFAULT_VOICE) -> float:
    """How long the fake's ``/audio/speech`` audio for ``text`` plays (bytes = ms * 48 at 24 kHz)."""
    return voice.duration_ms(text, speed)


def word_spans(text: str, speed: float = 1.0, voice: SyntheticVoice = DEFAULT_VOICE) -> list[WordSpan]:
    """Each word's span in the fake's audio for ``text``."""
    return voice.word_spans(text, speed)


def wav_header(data_bytes: int, sample_rate: int = SAMPLE_RATE, channels: int = 1) -> bytes:
    """A 44-byte RIFF/WAVE header for PCM16 ``data_bytes`` long."""
    byte_rate = sample_rate * channels * 2
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, byte_rate, channels * 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def wav_duration_s(data: bytes) -> float | None:
    """Duration of a PCM WAV file, or None if ``data`` is not one we can read."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    byte_rate = 0
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk_id == b"fmt " and size >= 16:
            byte_rate = struct.unpack("<I", data[pos + 16 : pos + 20])[0]
        elif chunk_id == b"data" and byte_rate:
            return min(size, len(data) - pos - 8) / byte_rate
        pos += 8 + size + (size & 1)
    return None


# --- multipart ---------------------------------------------------------------------------


class MultipartError(ValueError):
    """The body is not the multipart/form-data it claims to be."""


@dataclass(frozen=True, slots=True)
class UploadedFile:
    filename: str | None
    content_type: str | None
    data: bytes


def parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    """``(fields, files)`` of a multipart/form-data body. A part with a filename is a file;
    repeated text fields keep their last value."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise MultipartError("expected multipart/form-data with a boundary")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        raise MultipartError(f"malformed multipart body: {message.defects or 'no parts'}")
    fields: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise MultipartError("a part has no form field name")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = UploadedFile(filename, part.get_content_type(), data)
        else:
            fields[name] = data.decode(part.get_content_charset() or "utf-8", errors="replace")
    return fields, files
