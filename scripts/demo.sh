#!/usr/bin/env bash
# Set up (first run only) and run the demo: a local bot server and a simulated phone call.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
exec .venv/bin/phonewire demo "$@"
