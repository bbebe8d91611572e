"""HTTP Basic credentials for provider REST APIs (kept for compatibility: see ``rest_auth``)."""

from phonewire.telephony.rest_auth import basic_auth_header

__all__ = ["basic_auth_header"]
