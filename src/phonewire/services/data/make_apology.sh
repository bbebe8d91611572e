#!/usr/bin/env bash
# Regenerate the recorded apology the TTS plays when synthesis fails (services/apology.py):
# espeak-ng speech, 8 kHz μ-law WAV (half the size of PCM; the output transport resamples).
# Needs espeak-ng and sox (Debian: apt-get install espeak-ng sox). Run from this folder.
set -euo pipefail
espeak-ng -v en-us -s 165 -w /tmp/pw_apology.wav "Sorry, I'm having trouble right now. Please try again in a moment."
sox /tmp/pw_apology.wav -r 8000 -c 1 -e u-law apology.wav silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse
rm -f /tmp/pw_apology.wav
