"""Shared time limits of the FastAPI transport (kept apart to avoid an import cycle)."""

#: How long the end of a call waits for the hang-up before closing the socket itself.
HANGUP_BEFORE_CLOSE_SECS = 2.0
