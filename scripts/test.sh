#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite: lint, then pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
.venv/bin/ruff check src tests benchmarks examples
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
