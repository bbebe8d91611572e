"""Short-lived, single-use stream tokens that bind a media stream to the call the webhook saw.

Why: a provider's signature proves a *webhook* is genuine, but the media stream that follows is
a separate WebSocket, and its ``start`` message names a call id that anyone could forge. If the
bot trusted that id it would, at the end of the session, hang up somebody else's call with the
operator's credentials. So the webhook handler, which has verified the provider's signature,
mints a token for that call id and puts it in the stream instructions (Twilio ``<Parameter>``,
Telnyx ``custom_parameters``, Vonage ``headers``, …); when the stream's ``start`` arrives the
transport checks the token against the call id the stream claims.

A token is ``base64url(version | expiry | call-id fingerprint | nonce | HMAC-SHA256)``. The MAC
covers all of those plus the provider and the call id itself; the fingerprint (8 bytes of an
unkeyed hash of the call id) only lets a failure say "call id mismatch". The token carries no
secret, and any process holding the same secret can verify it. Only replay protection needs
shared state: see ``ReplayStore``.

Everything here is synchronous and clock-injectable; nothing logs; secrets never appear in a
``repr`` or an exception message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import os
import re
import secrets
import struct
import threading
import time
from collections.abc import Callable, Mapping
from typing import Literal, Protocol

from phonewire.exceptions import ConfigurationError, PhonewireError

__all__ = [
    "DEFAULT_TTL_S",
    "AsyncReplayStore",
    "MIN_SECRET_BYTES",
    "SECRET_ENV_VAR",
    "STREAM_TOKEN_PARAMETER",
    "InMemoryReplayStore",
    "ReplayStore",
    "StreamTokenError",
    "StreamTokenFailure",
    "StreamTokenSigner",
    "signer_from_env",
]

SECRET_ENV_VAR = "PHONEWIRE_STREAM_SECRET"

STREAM_TOKEN_PARAMETER = "phonewireToken"
"""Suggested custom-parameter name for the token. Letters only, because Plivo documents its
``extraHeaders`` keys as alphanumeric."""

DEFAULT_TTL_S = 120.0
"""Covers the gap between the webhook response and the stream's ``start`` (normally well under
10 s) with room for slow provider queues, while keeping a leaked token useless soon after."""

MIN_SECRET_BYTES = 16

StreamTokenFailure = Literal["expired", "bad signature", "call id mismatch", "replayed", "malformed"]

_VERSION = 1
_HEADER = struct.Struct(">BQ")  # version, expiry in Unix milliseconds
_FINGERPRINT_BYTES = 8
_NONCE_BYTES = 16
_MAX_NONCE_BYTES = 64
_TAG_BYTES = 32
_MIN_RAW_BYTES = _HEADER.size + _FINGERPRINT_BYTES + 1 + 1 + _TAG_BYTES
_MAX_TOKEN_CHARS = 256  # the longest valid token is ~160 characters; don't decode floods
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")
_KEY_CONTEXT = b"phonewire stream token key v1"
_REPLAY_KEY_PREFIX = "phonewire:stream-token:"


class StreamTokenError(PhonewireError):
    """The stream's token is not valid for this call; close the WebSocket with ``close_code``.

    ``reason`` is one of ``StreamTokenFailure``. "call id mismatch" means the token was minted
    for another call (or is a forgery carrying another call's fingerprint); "bad signature"
    means it was altered, minted with another secret, or minted for another provider.
    """

    close_code: int = 1008

    def __init__(self, reason: StreamTokenFailure) -> None:
        super().__init__(f"stream token rejected: {reason}")
        self.reason: StreamTokenFailure = reason


class ReplayStore(Protocol):
    """Remembers which tokens were already used, until they expire.

    ``claim`` must be atomic: it returns True the first time ``key`` is claimed and False while
    an earlier claim is still unexpired. ``expires_at`` is Unix seconds; after it the key may be
    forgotten (the token is rejected as expired by then anyway).
    """

    def claim(self, key: str, expires_at: float) -> bool: ...


class AsyncReplayStore(Protocol):
    """A ``ReplayStore`` shared over the network (Redis: ``SET key NX PX``), awaited by
    ``StreamTokenSigner.averify`` so no event loop blocks on it. ``claim`` is still required
    (for synchronous ``verify`` callers); ``aclaim`` has the same contract."""

    def claim(self, key: str, expires_at: float) -> bool: ...

    async def aclaim(self, key: str, expires_at: float) -> bool: ...


class InMemoryReplayStore:
    """A bounded, per-process ``ReplayStore``.

    Expired entries are purged on every claim. When ``max_entries`` unexpired entries are held,
    the one closest to expiry is dropped to make room, so memory stays bounded; that token could
    then be replayed in its last moments, which needs more than ``max_entries`` streams started
    within one TTL (100 000 per 120 s is over 800 calls a second).

    It only protects one process. If several server processes (uvicorn ``--workers``, several
    pods) can receive the stream, use a shared store instead: ``phonewire.fleet.RedisReplayStore``
    (``ServerConfig.fleet``, docs/deployment.md), which ``create_app`` installs for a fleet.
    """

    def __init__(self, max_entries: int = 100_000, *, clock: Callable[[], float] = time.time) -> None:
        if max_entries < 1:
            raise ConfigurationError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []  # (expires_at, key), one per entry
        self._lock = threading.Lock()

    @property
    def max_entries(self) -> int:
        return self._max_entries

    def __len__(self) -> int:
        return len(self._expiry)

    def __repr__(self) -> str:
        return f"InMemoryReplayStore(max_entries={self._max_entries}, entries={len(self)})"

    def claim(self, key: str, expires_at: float) -> bool:
        with self._lock:
            self._purge(self._clock())
            if key in self._expiry:
                return False
            while len(self._expiry) >= self._max_entries:
                _, oldest = heapq.heappop(self._heap)
                del self._expiry[oldest]
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))
            return True

    def _purge(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            _, key = heapq.heappop(self._heap)
            del self._expiry[key]


def _secret_bytes(secret: bytes | str) -> bytes:
    raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if len(raw) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"the stream token secret must be at least {MIN_SECRET_BYTES} bytes; "
            'generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )
    return raw


def _length_prefixed(text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    return struct.pack(">I", len(data)) + data


def _decode(token: str | None) -> bytes:
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS or not _TOKEN_CHARS.fullmatch(token):
        raise StreamTokenError("malformed")
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise StreamTokenError("malformed") from None


class _Parsed:
    __slots__ = ("body", "expiry_ms", "fingerprint", "nonce", "tag")

    def __init__(self, raw: bytes) -> None:
        if len(raw) < _MIN_RAW_BYTES:
            raise StreamTokenError("malformed")
        version, self.expiry_ms = _HEADER.unpack_from(raw)
        offset = _HEADER.size
        self.fingerprint = raw[offset : offset + _FINGERPRINT_BYTES]
        offset += _FINGERPRINT_BYTES
        nonce_length = raw[offset]
        self.nonce = raw[offset + 1 : offset + 1 + nonce_length]
        self.body = raw[: offset + 1 + nonce_length]
        self.tag = raw[len(self.body) :]
        if version != _VERSION or nonce_length == 0 or len(self.tag) != _TAG_BYTES:
            raise StreamTokenError("malformed")


class StreamTokenSigner:
    """Mints and checks stream tokens.

    Args:
        secret: At least 16 bytes (a str is UTF-8 encoded). Every process that mints or checks
            tokens for the same deployment needs the same secret; rotate it by deploying the new
            one everywhere (tokens in flight live only ``ttl_s``).
        ttl_s: How long a token stays valid after minting.
        clock: Unix time in seconds; injectable for tests.
        replay_store: Where used tokens are remembered. Defaults to a fresh
            ``InMemoryReplayStore`` on the same clock, which is only enough for one process.

    Raises:
        ConfigurationError: a secret that is too short, or a non-positive ``ttl_s``.
    """

    __slots__ = ("_clock", "_key", "_replay_store", "_ttl_s")

    def __init__(
        self,
        secret: bytes | str,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.time,
        replay_store: ReplayStore | None = None,
    ) -> None:
        if not ttl_s > 0:
            raise ConfigurationError("ttl_s must be positive")
        # A derived key, so the configured secret is not kept and cannot collide with another use
        # of the same value (e.g. someone reusing a provider auth token as the stream secret).
        self._key = hmac.new(_secret_bytes(secret), _KEY_CONTEXT, hashlib.sha256).digest()
        self._ttl_s = float(ttl_s)
        self._clock = clock
        self._replay_store = replay_store if replay_store is not None else InMemoryReplayStore(clock=clock)

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    @property
    def replay_store(self) -> ReplayStore:
        return self._replay_store

    def __repr__(self) -> str:
        return f"StreamTokenSigner(ttl_s={self._ttl_s}, replay_store={self._replay_store!r})"

    def mint(self, call_id: str, *, provider: str = "", account: str = "", nonce: str | None = None) -> str:
        """Return a token for ``call_id`` (the provider's id from the verified webhook).

        Args:
            call_id: Twilio ``CallSid``, Telnyx ``call_control_id``, Plivo ``CallUUID``, …
            provider: Optional label bound into the MAC ("twilio", …) so a token minted for one
                provider's route is not accepted on another's.
            account: Optional account id bound into the MAC (Twilio's ``AccountSid`` from the
                verified webhook): the stream must then claim the same account, because the
                account id is part of the REST hang-up URL. ``verify`` needs the same value.
            nonce: Only for reproducible tests; by default 16 random bytes. Tokens are
                single-use per nonce, so never reuse one in production.

        Raises:
            ConfigurationError: an empty call id, or a nonce that is empty or over 64 bytes.
        """
        if not call_id:
            raise ConfigurationError("a stream token needs a call id")
        nonce_bytes = secrets.token_bytes(_NONCE_BYTES) if nonce is None else nonce.encode("utf-8")
        if not 0 < len(nonce_bytes) <= _MAX_NONCE_BYTES:
            raise ConfigurationError(f"the nonce must be 1 to {_MAX_NONCE_BYTES} bytes")
        expiry_ms = int((self._clock() + self._ttl_s) * 1000)
        body = _HEADER.pack(_VERSION, expiry_ms) + self._fingerprint(call_id) + bytes([len(nonce_bytes)]) + nonce_bytes
        token = body + self._tag(body, provider, call_id, account)
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")

    def verify(self, token: str | None, call_id: str | None, *, provider: str = "", account: str = "") -> None:
        """Accept the token for this call exactly once, or raise.

        ``account`` must be what ``mint`` was given (a stream claiming another account fails
        as "bad signature"). Checks, in order: well-formed, MAC (telling "call id mismatch"
        from "bad signature"),
        not expired, not used before. Only a fully valid token is recorded as used, so a
        forged or expired one cannot burn a genuine token's single use.

        Raises:
            StreamTokenError: with ``reason`` set; nothing else, whatever ``token`` holds.
        """
        replay_key, expires_at = self._check(token, call_id, provider, account)
        if not self._replay_store.claim(replay_key, expires_at):
            raise StreamTokenError("replayed")

    async def averify(self, token: str | None, call_id: str | None, *, provider: str = "", account: str = "") -> None:
        """``verify`` for a shared store that answers over the network (``AsyncReplayStore``,
        e.g. ``phonewire.fleet.RedisReplayStore``): the single-use claim is awaited, so the
        event loop never blocks on it. A store with only ``claim`` is called as ``verify`` does.

        Raises:
            StreamTokenError: as ``verify``. Whatever the store raises (Redis down, a
                timeout) propagates: the caller must refuse the stream (fail closed).
        """
        replay_key, expires_at = self._check(token, call_id, provider, account)
        store = self._replay_store
        aclaim = getattr(store, "aclaim", None)
        claimed = await aclaim(replay_key, expires_at) if aclaim is not None else store.claim(replay_key, expires_at)
        if not claimed:
            raise StreamTokenError("replayed")

    def _check(self, token: str | None, call_id: str | None, provider: str, account: str) -> tuple[str, float]:
        """Everything but the single use: (replay key, its expiry in Unix seconds)."""
        parsed = _Parsed(_decode(token))
        call_id = call_id if isinstance(call_id, str) else ""
        account = account if isinstance(account, str) else ""
        if not hmac.compare_digest(parsed.tag, self._tag(parsed.body, provider, call_id, account)):
            if not hmac.compare_digest(parsed.fingerprint, self._fingerprint(call_id)):
                raise StreamTokenError("call id mismatch")
            raise StreamTokenError("bad signature")
        if self._clock() * 1000 >= parsed.expiry_ms:
            raise StreamTokenError("expired")
        # Keyed on the MAC, not the token text: re-encodings of one token share one use.
        return _REPLAY_KEY_PREFIX + parsed.tag.hex(), parsed.expiry_ms / 1000

    @staticmethod
    def _fingerprint(call_id: str) -> bytes:
        # Unkeyed on purpose: it only tells "minted for another call" from "forged or minted with
        # another secret" when the MAC fails. Call ids are not secret (the stream sends them).
        digest = hashlib.sha256(b"phonewire call id\x00" + _length_prefixed(call_id)).digest()
        return digest[:_FINGERPRINT_BYTES]

    def _tag(self, body: bytes, provider: str, call_id: str, account: str = "") -> bytes:
        message = b"tag\x00" + body + _length_prefixed(provider) + _length_prefixed(call_id)
        if account:  # appended only when bound, so tokens minted without one keep their MAC
            message += b"account\x00" + _length_prefixed(account)
        return hmac.new(self._key, message, hashlib.sha256).digest()


def signer_from_env(
    *,
    ttl_s: float = DEFAULT_TTL_S,
    replay_store: ReplayStore | None = None,
    environ: Mapping[str, str] | None = None,
) -> StreamTokenSigner | None:
    """A signer keyed by ``PHONEWIRE_STREAM_SECRET``, or None when the variable is unset or empty.

    None lets the caller decide whether running without stream tokens is acceptable (local
    development) or an error (production).

    Raises:
        ConfigurationError: the variable is set but shorter than 16 bytes.
    """
    secret = (os.environ if environ is None else environ).get(SECRET_ENV_VAR, "")
    if not secret:
        return None
    return StreamTokenSigner(secret, ttl_s=ttl_s, replay_store=replay_store)
