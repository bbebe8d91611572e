"""HTTP Basic credentials for provider REST APIs (Twilio, Plivo), used by the serializers'
hang-up requests (kept here so serializers/ does not import telephony/)."""

from __future__ import annotations

import base64

__all__ = ["basic_auth_header"]


def basic_auth_header(user: str, secret: str) -> str:
    token = base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")
    return f"Basic {token}"
