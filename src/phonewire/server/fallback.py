"""What a provider's answer webhook gets while the server drains (``drain_webhook_fallback``).

=============  ===================================  ==================================  ==========
provider       ``hangup`` (default)                 ``redirect`` (``drain_fallback_url``)  ``reject``
=============  ===================================  ==================================  ==========
Twilio         ``<Say>`` + ``<Hangup/>``             ``<Redirect>``: TwiML from the URL   503
Telnyx TeXML   ``<Say>`` + ``<Hangup/>``             ``<Redirect>``                       503
Plivo          ``<Speak>`` + ``<Hangup/>``           ``<Redirect>``                       503
Vonage         NCCO ``talk`` (the call then ends)    503 (NCCO has no redirect)          503
Exotel         503 (a Voicebot applet wants a URL)   503                                  503
=============  ===================================  ==================================  ==========

``reject`` answers 503 with ``Retry-After``: each provider then uses the fallback it is
configured with - Twilio the number's *Fallback URL*, Plivo the application's
``fallback_answer_url``, Vonage the application's ``fallback_answer_url``, Telnyx the
TeXML application's fallback URL - and with none configured the caller hears the provider's
error message. ``redirect`` with a URL of another healthy node (or a static TwiML bin)
keeps the call alive; ``hangup`` is for a single node, where nobody else could take it.
Nothing here needs the request verified: the answer carries no token and names no call.
"""

from __future__ import annotations

import json
from xml.sax.saxutils import escape

from phonewire.server.config import ServerConfig

__all__ = ["FALLBACK_MODES", "fallback_answer"]

FALLBACK_MODES = ("hangup", "redirect", "reject")
XML = "application/xml"
RETRY_AFTER_SECS = "30"


def fallback_answer(provider: str, config: ServerConfig) -> tuple[int, bytes, str, dict[str, str]]:
    """(status, body, media type, extra headers) for ``provider``'s answer webhook."""
    mode = config.drain_webhook_fallback
    message = config.drain_fallback_message
    url = config.drain_fallback_url
    if mode == "redirect" and url and provider in ("twilio", "telnyx", "plivo"):
        return 200, _xml(f'<Redirect method="POST">{escape(url)}</Redirect>'), XML, {}
    if mode == "hangup" and provider in ("twilio", "telnyx"):
        say = f"<Say>{escape(message)}</Say>" if message else ""
        return 200, _xml(f"{say}<Hangup/>"), XML, {}
    if mode == "hangup" and provider == "plivo":
        speak = f"<Speak>{escape(message)}</Speak>" if message else ""
        return 200, _xml(f"{speak}<Hangup/>"), XML, {}
    if mode == "hangup" and provider == "vonage" and message:
        return 200, json.dumps([{"action": "talk", "text": message}]).encode(), "application/json", {}
    return 503, b"draining: try another server", "text/plain", {"Retry-After": RETRY_AFTER_SECS}


def _xml(inner: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'.encode()
