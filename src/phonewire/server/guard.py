"""Who may open a media stream, and which call ids may be hung up.

Two independent checks (docs/security.md):

* **Upgrade signatures** - a provider that signs its WebSocket upgrade (Twilio
  ``X-Twilio-Signature``, Plivo ``X-Plivo-Signature-V3``, Telnyx's stream auth token header,
  Vonage's ``Authorization: Bearer`` JWT) is checked when its credential is configured.
  A bad signature is refused; an absent one is left to the stream token. An upgrade whose
  signature checked out waits for its handshake in a pool of its own (``HandshakePools``),
  so idle unsigned sockets - which anyone can open - cannot crowd the provider's calls out
  of ``max_pending_handshakes``. Providers that sign no upgrade (Exotel, raw PCM) share the
  unsigned pool: docs/security.md has that residual and the proxy allow-list for it.
* **Stream tokens** - the webhook answer carries a short-lived, single-use token bound to
  the call id; the stream's start must present it for that same call id. Only then is the
  call "verified", and only verified calls are hung up with our credentials: a forged
  ``start`` naming somebody else's call never reaches a REST API. A Twilio token is also
  bound to the webhook's ``AccountSid``, so the start's ``accountSid`` (which names the
  account in the hang-up URL) must be the one the verified webhook named.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Protocol

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

__all__ = [
    "STORE_UNAVAILABLE",
    "HandshakePools",
    "acheck_stream_token",
    "check_stream_token",
    "check_upgrade",
    "classify_upgrade",
]

logger = logging.getLogger("phonewire.server")


def check_upgrade(config: ServerConfig, scope: Mapping[str, object], headers: Mapping[str, str]) -> str | None:
    """Returns a refusal reason, or None when every present signature checks out."""
    return classify_upgrade(config, scope, headers)[0]


def classify_upgrade(
    config: ServerConfig, scope: Mapping[str, object], headers: Mapping[str, str]
) -> tuple[str | None, bool]:
    """(refusal reason or None, signed): ``signed`` is True when the upgrade carried at least
    one provider signature that was checked against a configured credential and is valid."""
    url = public_url(scope, headers, trust_forwarded=config.trust_forwarded)
    signed = False
    sig = headers.get("x-twilio-signature")
    if sig is not None and config.twilio_auth_token:
        if not verify_twilio(url, None, sig, config.twilio_auth_token):
            return "bad X-Twilio-Signature", False
        signed = True
    plivo = headers.get("x-plivo-signature-v3")
    if plivo is not None and config.plivo_auth_token:
        nonce = headers.get("x-plivo-signature-v3-nonce")
        if not verify_plivo_v3_websocket(url, nonce, plivo, config.plivo_auth_token):
            return "bad X-Plivo-Signature-V3", False
        signed = True
    telnyx = headers.get("x-telnyx-streaming-auth-token")
    if config.telnyx_stream_token and telnyx is not None:
        if not verify_telnyx_stream_token(telnyx, config.telnyx_stream_token):
            return "bad Telnyx stream auth token", False
        signed = True
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and config.vonage_signature_secret:
        try:
            verify_vonage_jwt(auth, config.vonage_signature_secret)
        except Exception:
            return "bad Vonage JWT", False
        signed = True
    return None, signed


class _PendingTally(Protocol):
    """What ``HandshakePools`` needs of ``server.metrics.Metrics``."""

    pending_by_client: Counter[str]

    def pending_refusal(self, client: str, total: int, per_client: int) -> str | None: ...
    def pending_started(self, client: str) -> None: ...
    def pending_ended(self, client: str) -> None: ...


class HandshakePools:
    """Pending handshakes in two pools: signed upgrades, and everyone else.

    Every pending socket is counted in ``Metrics`` (its gauge shows them all); the unsigned
    pool's caps (``max_pending_handshakes`` in total, ``max_pending_per_client`` per address)
    are applied to the sockets that are not signed, and signed ones have
    ``max_pending_handshakes`` of their own, with no per-address cap (a provider's media
    servers are few addresses). A signed upgrade is still a replayable credential for some
    providers (Twilio signs the URL alone), so the signed pool is bounded too.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.limit = config.max_pending_handshakes
        self.per_client = config.max_pending_per_client
        self.signed = 0
        self._signed_by_client: Counter[str] = Counter()

    def refusal(self, metrics: _PendingTally, client: str, *, signed: bool) -> str | None:
        """Why one more pending handshake is refused, or None."""
        if signed:
            if self.signed >= self.limit:
                return f"{self.signed} signed handshakes pending (max_pending_handshakes)"
            return None
        # Raising the unsigned caps by the signed counts applies them to unsigned sockets only.
        return metrics.pending_refusal(
            client, self.limit + self.signed, self.per_client + self._signed_by_client[client]
        )

    def started(self, metrics: _PendingTally, client: str, *, signed: bool) -> None:
        metrics.pending_started(client)
        if signed:
            self.signed += 1
            self._signed_by_client[client] += 1

    def ended(self, metrics: _PendingTally, client: str, *, signed: bool) -> None:
        metrics.pending_ended(client)
        if signed:
            self.signed -= 1
            self._signed_by_client[client] -= 1
            if self._signed_by_client[client] <= 0:
                del self._signed_by_client[client]


def check_stream_token(signer: StreamTokenSigner | None, info: CallInfo, *, required: bool) -> tuple[bool, str | None]:
    """(verified, refusal reason). A refusal means: close the stream, run no bot."""
    early, token, account = _token_of(signer, info, required=required)
    if early is not None:
        return early
    assert signer is not None
    try:
        signer.verify(token, info.call_id, provider=info.provider, account=account)
    except StreamTokenError as exc:
        return False, f"stream token rejected: {exc.reason}"
    return True, None


#: The refusal of a token whose single use could not be checked (the fleet's store is down):
#: not the caller's fault, so the stream is closed 1013 ("try again later"), not 1008.
STORE_UNAVAILABLE = "stream token not checked: replay store unavailable"


async def acheck_stream_token(
    signer: StreamTokenSigner | None, info: CallInfo, *, required: bool
) -> tuple[bool, str | None]:
    """``check_stream_token`` with the single-use claim awaited (a fleet's shared store,
    ``StreamTokenSigner.averify``). A store that cannot answer refuses the stream: fail closed."""
    early, token, account = _token_of(signer, info, required=required)
    if early is not None:
        return early
    assert signer is not None
    try:
        await signer.averify(token, info.call_id, provider=info.provider, account=account)
    except StreamTokenError as exc:
        return False, f"stream token rejected: {exc.reason}"
    except Exception as exc:  # Redis down or slow: a token we cannot prove unused is refused
        return False, f"{STORE_UNAVAILABLE} ({type(exc).__name__})"
    return True, None


def _token_of(
    signer: StreamTokenSigner | None, info: CallInfo, *, required: bool
) -> tuple[tuple[bool, str | None] | None, str | None, str]:
    token = info.custom_parameters.get(STREAM_TOKEN_PARAMETER)
    if signer is None:
        return (False, "stream tokens required but no stream secret configured" if required else None), None, ""
    if token is None and not required:
        return (False, None), None, ""
    # Twilio tokens are bound to the webhook's AccountSid: the start's accountSid goes into the
    # REST hang-up URL, so a stream claiming another account must not pass (issue 11, finding 4).
    account = (info.account_id or "") if info.provider == "twilio" else ""
    return None, token, account
