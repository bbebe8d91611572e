"""ServerConfig: everything ``create_app`` needs, with defaults that are safe to deploy.

Credentials come from keyword arguments or the environment, never from code in the repo:
``TWILIO_AUTH_TOKEN`` (the account SID comes from each call's start message), ``TELNYX_API_KEY``/``TELNYX_PUBLIC_KEY``,
``PLIVO_AUTH_ID``/``PLIVO_AUTH_TOKEN``, ``VONAGE_APPLICATION_ID``/``VONAGE_PRIVATE_KEY``/
``VONAGE_SIGNATURE_SECRET``, ``PHONEWIRE_STREAM_SECRET``, ``PHONEWIRE_PUBLIC_HOST``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ServerConfig"]


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


@dataclass(kw_only=True)
class ServerConfig:
    #: Path of the one auto-detecting media-stream route.
    ws_path: str = "/ws"
    #: Prefix of the provider webhook routes (``/webhooks/twilio`` ...).
    webhook_prefix: str = "/webhooks"
    #: Host (and port) providers reach us on, e.g. ``bot.example.com``; None: the request's Host.
    public_host: str | None = field(default_factory=lambda: _env("PHONEWIRE_PUBLIC_HOST"))
    #: Scheme of the stream URL handed to providers (they require wss; the demo uses ws).
    stream_scheme: str = "wss"
    #: Honour X-Forwarded-Proto/Host (only behind a proxy you control; see docs/security.md).
    trust_forwarded: bool = False
    #: Restrict the /ws route to these providers (None: detect any).
    providers: list[str] | None = None
    #: Seconds a new stream has to identify itself.
    handshake_timeout: float = 10.0
    #: Calls served at once by this process; more are refused with close code 1013. A stream
    #: counts once its handshake is done and its token checked (idle sockets hold no slot).
    max_calls: int = 200
    #: Streams still in their handshake at once (process-wide, and per client address);
    #: more are refused (close 1013) so unidentified sockets cannot crowd out calls.
    max_pending_handshakes: int = 64
    max_pending_per_client: int = 16
    #: Web server limits (``uvicorn_config_kwargs``): seconds a client has to send a request's
    #: headers, their largest size, and open HTTP/WebSocket connections (None: derived).
    header_timeout: float = 10.0
    max_header_bytes: int = 16 * 1024
    max_connections: int | None = None
    #: Seconds a request's body has to arrive once its headers have: a webhook answers 408
    #: after it, and the web server closes any request still sending its body a second later.
    webhook_body_timeout: float = 5.0
    #: Serve /docs, /redoc and /openapi.json (off: they map the attack surface for nobody's benefit).
    api_docs: bool = False
    #: Secret for stream tokens; with one set, streams must carry a valid token.
    stream_secret: str | None = field(default_factory=lambda: _env("PHONEWIRE_STREAM_SECRET"))
    #: None: require tokens exactly when a stream secret is configured.
    require_stream_token: bool | None = None
    #: Provider credentials checked on webhooks and WebSocket upgrades when present.
    twilio_auth_token: str | None = field(default_factory=lambda: _env("TWILIO_AUTH_TOKEN"))
    telnyx_public_key: str | None = field(default_factory=lambda: _env("TELNYX_PUBLIC_KEY"))
    telnyx_stream_token: str | None = field(default_factory=lambda: _env("TELNYX_STREAM_AUTH_TOKEN"))
    plivo_auth_token: str | None = field(default_factory=lambda: _env("PLIVO_AUTH_TOKEN"))
    vonage_signature_secret: str | None = field(default_factory=lambda: _env("VONAGE_SIGNATURE_SECRET"))
    #: ``user:pass`` that Exotel must send as HTTP Basic (put them in the applet URL:
    #: ``https://user:pass@host/webhooks/exotel``). Exotel signs nothing, so without this the
    #: Exotel webhook is refused (docs/security.md).
    exotel_webhook_basic_auth: str | None = field(default_factory=lambda: _env("PHONEWIRE_EXOTEL_WEBHOOK_AUTH"))
    #: Where answered signed webhooks are remembered so replays get the same token back
    #: (``phonewire.telephony.request_memory.SignedRequestStore``); None: a bounded per-process one.
    webhook_request_store: Any = None
    #: Extra keyword arguments per provider for its serializer (credentials, params, base_url).
    serializer_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Freeze the objects alive once the app is built (gc.freeze) so full collections skip
    #: them: measured 85 ms pauses at 200 calls without it (docs/benchmarks.md).
    freeze_gc: bool = True
    #: Voice activity detection per call: "silero" (the default: an agent needs caller turns
    #: and barge-in; one model per process, state per call), "energy" (the light fallback) or
    #: None (a bot that needs neither, e.g. a pure echo).
    vad: str | None = "silero"
    #: Graceful drain on SIGTERM (``server/drain.py``, docs/deployment.md): new calls refused,
    #: active ones get ``drain_timeout_secs`` to end, then ``drain_goodbye`` (a TTSSpeakFrame;
    #: None: just end) and ``drain_goodbye_timeout_secs`` to play out and hang up.
    drain_on_sigterm: bool = True
    drain_timeout_secs: float = field(default_factory=lambda: float(_env("PHONEWIRE_DRAIN_TIMEOUT") or 20.0))
    drain_goodbye: str | None = field(default_factory=lambda: _env("PHONEWIRE_DRAIN_GOODBYE"))
    drain_goodbye_timeout_secs: float = 8.0
    #: What answer webhooks get while draining: "hangup" (say drain_fallback_message, hang up),
    #: "redirect" (to drain_fallback_url) or "reject" (503: the provider's own fallback URL).
    drain_webhook_fallback: str = field(default_factory=lambda: _env("PHONEWIRE_DRAIN_FALLBACK") or "hangup")
    drain_fallback_message: str | None = "Sorry, we cannot take your call right now. Please call again in a minute."
    drain_fallback_url: str | None = field(default_factory=lambda: _env("PHONEWIRE_DRAIN_FALLBACK_URL"))
    #: "text" (readable, the default) or "json" (one object per line; server/json_logs.py).
    #: Applied by ``phonewire serve``; under your own uvicorn call ``json_logs.configure_logging``.
    log_format: str = field(default_factory=lambda: _env("PHONEWIRE_LOG_FORMAT") or "text")
    #: OpenTelemetry spans per call/turn/service (needs ``phonewire[tracing]``); off: no import.
    tracing: bool = field(default_factory=lambda: bool(_env("PHONEWIRE_TRACING")))
    #: The TracerProvider for those spans; None: OpenTelemetry's global one.
    tracer_provider: Any = None
    #: The browser softphone at ``/softphone`` (docs/softphone.md): off unless enabled. Its page
    #: mints stream tokens with ``softphone_token`` (a Bearer key; ``console_token`` when unset),
    #: at most ``softphone_mints_per_minute`` per process.
    softphone: bool = field(default_factory=lambda: bool(_env("PHONEWIRE_SOFTPHONE")))
    softphone_token: str | None = field(default_factory=lambda: _env("PHONEWIRE_SOFTPHONE_TOKEN"))
    softphone_mints_per_minute: int = 20
    #: The live call console at ``/calls``: on when set (HTTP Basic password, or a Bearer key).
    console_token: str | None = field(default_factory=lambda: _env("PHONEWIRE_CONSOLE_TOKEN"))
    #: Overrides for FastAPIWebsocketParams of every call.
    transport_params: dict[str, Any] = field(default_factory=dict)
    #: Media formats offered in webhook answers.
    plivo_content_type: str = "audio/x-mulaw;rate=8000"
    vonage_content_type: str = "audio/l16;rate=16000"
    telnyx_codec: str = "PCMU"
    #: Rate of the audio we send Telnyx when telnyx_codec is "L16" (8000 or 16000).
    telnyx_sampling_rate: int = 8000
    #: ``async (PrewarmCall) -> Any``, started when a webhook is verified (the phone rings
    #: meanwhile); its result is the call's ``phonewire.server.prewarm.prewarmed()``. Unused
    #: results are closed after ``prewarm_ttl_secs``; at most ``prewarm_max`` are pending.
    prewarm: Any = None
    prewarm_ttl_secs: float = 30.0
    prewarm_max: int = 100
    #: A fleet of nodes on one Redis (``phonewire.fleet.FleetConfig``; docs/deployment.md):
    #: fleet-wide single-use tokens and webhook memory, limits, a live-call registry and call
    #: commands. None: every store is per process, as on one machine.
    fleet: Any = None
    #: Record calls (``phonewire.recording.RecordingConfig``): stereo WAV + JSON sidecar per call.
    recording: Any = None
    #: A second stream for a call that is live (same verified call id - e.g. a provider that
    #: reconnects and presents the same token): "refuse" it (close 1008) or "replace" the old
    #: stream (closed without a hang-up; the new one gets a fresh bot). docs/deployment.md.
    duplicate_stream_policy: str = field(default_factory=lambda: _env("PHONEWIRE_DUPLICATE_STREAMS") or "refuse")
    #: Resumed streams: a verified call of ``resume_providers`` whose socket drops (no close
    #: frame, no provider stop) is held this many seconds - its bot, context and pipeline kept,
    #: its audio dropped meanwhile - and a reconnect for the same call id carrying the call's
    #: token (or a fresh one) continues it; after the window the call ends as a disconnect.
    #: 0: off (a drop ends the call at once). docs/deployment.md.
    resume_window_secs: float = field(default_factory=lambda: float(_env("PHONEWIRE_RESUME_WINDOW") or 10.0))
    #: The providers whose streams reconnect mid-call (Twilio, Telnyx, Plivo, Exotel never do).
    resume_providers: tuple[str, ...] = ("raw_pcm", "vonage")

    def __repr__(self) -> str:
        # Secrets never appear in logs or reprs.
        hidden = ("secret", "token", "key", "auth", "store")
        shown = {k: v for k, v in vars(self).items() if not any(h in k for h in hidden) and k != "serializer_kwargs"}
        shown["serializer_kwargs"] = {p: sorted(kw) for p, kw in self.serializer_kwargs.items()}  # names only
        return f"ServerConfig({shown})"

    @property
    def tokens_required(self) -> bool:
        if self.require_stream_token is not None:
            return self.require_stream_token
        return self.stream_secret is not None
