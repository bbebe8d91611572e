"""In-band DTMF tones, for providers whose media stream has no DTMF message (Twilio,
Telnyx, Exotel, Vonage): the digits are played into the call as audio, which IVRs on
the far side decode like any keypad."""

from __future__ import annotations

import numpy as np

__all__ = ["dtmf_tones"]

_LOW = {
    "1": 697,
    "2": 697,
    "3": 697,
    "A": 697,
    "4": 770,
    "5": 770,
    "6": 770,
    "B": 770,
    "7": 852,
    "8": 852,
    "9": 852,
    "C": 852,
    "*": 941,
    "0": 941,
    "#": 941,
    "D": 941,
}
_HIGH = {
    "1": 1209,
    "4": 1209,
    "7": 1209,
    "*": 1209,
    "2": 1336,
    "5": 1336,
    "8": 1336,
    "0": 1336,
    "3": 1477,
    "6": 1477,
    "9": 1477,
    "#": 1477,
    "A": 1633,
    "B": 1633,
    "C": 1633,
    "D": 1633,
}
#: ITU Q.24 asks for >= 40 ms of tone and pause; 100/70 ms is what handsets send.
TONE_SECS = 0.1
GAP_SECS = 0.07


def dtmf_tones(digits: str, sample_rate: int, amplitude: float = 0.25) -> bytes:
    """PCM16 of ``digits`` as dual tones separated by silence; unknown characters are skipped."""
    t = np.arange(int(sample_rate * TONE_SECS)) / sample_rate
    gap = np.zeros(int(sample_rate * GAP_SECS))
    parts = []
    for d in digits.upper():
        if d not in _LOW:
            continue
        wave = np.sin(2 * np.pi * _LOW[d] * t) + np.sin(2 * np.pi * _HIGH[d] * t)
        parts += [wave * (amplitude * 32767 / 2), gap]
    if not parts:
        return b""
    return np.concatenate(parts).astype("<i2").tobytes()
