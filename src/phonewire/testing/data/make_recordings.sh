#!/bin/sh
# Regenerates the simulator's built-in caller recordings (run once; the WAVs are committed).
#
# espeak-ng renders the sentence at its native 22.05 kHz; sox converts it to what a phone
# line carries (8 kHz, mono, 16-bit PCM), removes the leading/trailing silence espeak adds
# (so the simulator's "end of caller speech" is the end of the words), and normalises the
# level to -3 dBFS peak. Voice en-us, 165 words/minute: clear, and short enough for tests.
set -eu
cd "$(dirname "$0")"

render() {
    out=$1
    text=$2
    tmp=$(mktemp --suffix=.wav)
    espeak-ng -v en-us -s 165 -w "$tmp" "$text"
    sox "$tmp" -r 8000 -c 1 -b 16 -e signed-integer "$out" \
        silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse gain -n -3
    rm -f "$tmp"
}

render caller_hello.wav "Hi, I would like to know my order status."
render caller_thanks.wav "Thank you, that's all."
