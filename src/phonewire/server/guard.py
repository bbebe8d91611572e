"""Who may open a media stream, and which call ids may be hung up.

Two independent checks (docs/security.md):

* **Upgrade signatures** - a provider that signs its WebSocket upgrade (Twilio
  ``X-Twilio-Signature``, Plivo ``X-Plivo-Signature-V3``, Telnyx's stream auth token header,
  Vonage's ``Authorization: Bearer`` JWT) is checked when its credential is configured.
  A bad signature is refused; an absent one is left to the stream token.
* **Stream tokens** - the webhook answer carries a short-lived, single-use token bound to
  the call id; the stream's start must present it for that same call id. Only then is the
  call "verified", and only verified calls are hung up with our credentials: a forged
  ``start`` naming somebody else's call never reaches a REST API. A Twilio token is also
  bound to the webhook's ``AccountSid``, so the start's ``accountSid`` (which names the
  account in the hang-up URL) must be the one the verified webhook named.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from phonewire.serializers.base import CallInfo
from phonewire.server.config import ServerConfig
from phonewire.telephony.signatures import (
    public_url,
    verify_plivo_v3_websocket,
    verify_telnyx_stream_token,
    verify_twilio,
    verify_vonage_jwt,
)
from phonewire.telephony.tokens import STREAM_TOKEN_PARAMETER, StreamTokenError, StreamTokenSigner

__all__ = ["check_stream_token", "check_upgrade"]

logger = logging.getLogger("phonewire.server")


def check_upgrade(config: ServerConfig, scope: Mapping[str, object], headers: Mapping[str, str]) -> str | None:
    """Returns a refusal reason, or None when every present signature checks out."""
    url = public_url(scope, headers, trust_forwarded=config.trust_forwarded)
    sig = headers.get("x-twilio-signature")
    if sig is not None and config.twilio_auth_token and not verify_twilio(url, None, sig, config.twilio_auth_token):
        return "bad X-Twilio-Signature"
    plivo = headers.get("x-plivo-signature-v3")
    if plivo is not None and config.plivo_auth_token:
        nonce = headers.get("x-plivo-signature-v3-nonce")
        if not verify_plivo_v3_websocket(url, nonce, plivo, config.plivo_auth_token):
            return "bad X-Plivo-Signature-V3"
    telnyx = headers.get("x-telnyx-streaming-auth-token")
    if config.telnyx_stream_token and telnyx is not None:
        if not verify_telnyx_stream_token(telnyx, config.telnyx_stream_token):
            return "bad Telnyx stream auth token"
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and config.vonage_signature_secret:
        try:
            verify_vonage_jwt(auth, config.vonage_signature_secret)
        except Exception:
            return "bad Vonage JWT"
    return None


def check_stream_token(signer: StreamTokenSigner | None, info: CallInfo, *, required: bool) -> tuple[bool, str | None]:
    """(verified, refusal reason). A refusal means: close the stream, run no bot."""
    token = info.custom_parameters.get(STREAM_TOKEN_PARAMETER)
    if signer is None:
        return False, "stream tokens required but no stream secret configured" if required else None
    if token is None and not required:
        return False, None
    # Twilio tokens are bound to the webhook's AccountSid: the start's accountSid goes into the
    # REST hang-up URL, so a stream claiming another account must not pass (issue 11, finding 4).
    account = (info.account_id or "") if info.provider == "twilio" else ""
    try:
        signer.verify(token, info.call_id, provider=info.provider, account=account)
    except StreamTokenError as exc:
        return False, f"stream token rejected: {exc.reason}"
    return True, None
