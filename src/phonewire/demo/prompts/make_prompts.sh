#!/usr/bin/env bash
# Regenerate the demo bot's prompts: espeak-ng speech, 8 kHz μ-law WAV (half the size of PCM).
# Needs espeak-ng and sox (Debian: apt-get install espeak-ng sox). Run from this folder.
set -euo pipefail
say() {  # say NAME "TEXT"
  espeak-ng -v en-us -s 165 -w /tmp/pw_prompt.wav "$2"
  sox /tmp/pw_prompt.wav -r 8000 -c 1 -e u-law "$1.wav" silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse
}
say greeting "Hi, this is phonewire. Say something and I will repeat it. Pound hangs up."
say goodbye "Thanks for calling. Goodbye."
say timeout "We have reached the end of this demo call. Goodbye."
for d in zero one two three four five six seven eight nine; do say "digit_$d" "$d"; done
say digit_star "star"
rm -f /tmp/pw_prompt.wav
