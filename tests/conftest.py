"""Shared test helpers: a real uvicorn server on 127.0.0.1 and a Twilio-speaking client."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
