#!/usr/bin/env bash
# Set up (first run only) and run the demo: a conversing bot server (Whisper, a rules brain or an
# OpenAI-compatible LLM, Piper) and a simulated phone call to it. Arguments go to `phonewire demo`.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
exec .venv/bin/phonewire demo "$@"
