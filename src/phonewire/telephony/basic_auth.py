"""HTTP Basic credentials for provider REST APIs (re-exported from the serializers layer)."""

from phonewire.serializers._auth import basic_auth_header

__all__ = ["basic_auth_header"]
