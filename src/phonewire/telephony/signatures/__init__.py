"""Provider request signatures: is this webhook, or this WebSocket upgrade, really from the provider?

Without these checks anyone who can reach the bot's URL can open a media stream, spend the
bot's speech and LLM budget, and feed it a forged call id that phonewire would later hang up
*with the operator's own provider credentials* (docs/security.md has the threat model).

Everything here is sans-I/O and synchronous: the caller passes the URL, the parameters, the raw
body and the header values; the functions answer. ``verify_*`` functions return ``False`` for
anything that is not a valid signature and never raise on hostile input (the property tests in
tests/telephony enforce that). The Vonage JWT check is the exception: it returns the verified
claims, so a failure raises ``SignatureError``.

All comparisons are constant-time (``hmac.compare_digest`` on bytes). Nothing here logs, and no
exception message contains a secret.

Per provider (details in docs/security.md and the provider references cited on each function):

* Twilio: ``X-Twilio-Signature`` = base64 HMAC-SHA1 (or HMAC-SHA256 under a Webhooks Rule) of the
  URL followed by the sorted form fields. WebSocket upgrade: the URL only.
* Telnyx: Ed25519 over ``"<telnyx-timestamp>|<raw body>"``; the upgrade carries a static
  ``x-telnyx-streaming-auth-token`` instead.
* Plivo: ``X-Plivo-Signature-V3`` HMAC-SHA256 (webhooks *and* the upgrade); legacy V2.
* Vonage: an HS256 JWT in ``Authorization: Bearer``; we also mint the RS256 application JWT the
  Vonage REST API wants for hang-ups.
* Exotel signs nothing. The operator puts HTTP Basic credentials in the applet's URL
  (``https://user:pass@host/...``, sent as ``Authorization: Basic``): ``verify_basic_auth``.

One module per provider (``twilio``, ``telnyx``, ``plivo``, ``vonage``, ``basic``) over the shared
helpers in ``_common``; this package re-exports every public name, so
``from phonewire.telephony.signatures import verify_twilio`` keeps working. ``public_url`` lives in
``phonewire.telephony.public_url`` and ``vonage_application_jwt`` in ``phonewire.telephony.rest_auth``
(both re-exported here).
"""

from __future__ import annotations

from phonewire.telephony.public_url import public_url
from phonewire.telephony.rest_auth import vonage_application_jwt
from phonewire.telephony.signatures._common import (
    TELNYX_TOLERANCE_S,
    VONAGE_MAX_AGE_S,
    Params,
    SignatureError,
    signature_bytes,
)
from phonewire.telephony.signatures.basic import verify_basic_auth
from phonewire.telephony.signatures.plivo import (
    plivo_v2_signature,
    plivo_v3_matched_signature,
    plivo_v3_signature,
    verify_plivo_v2,
    verify_plivo_v3,
    verify_plivo_v3_websocket,
)
from phonewire.telephony.signatures.telnyx import load_telnyx_public_key, verify_telnyx, verify_telnyx_stream_token
from phonewire.telephony.signatures.twilio import (
    TwilioSignatureSettings,
    parse_twilio_signature_settings,
    twilio_signature,
    verify_twilio,
)
from phonewire.telephony.signatures.vonage import jwt_signature_bytes, verify_vonage_jwt, vonage_query_payloads

__all__ = [
    "Params",
    "SignatureError",
    "TELNYX_TOLERANCE_S",
    "TwilioSignatureSettings",
    "VONAGE_MAX_AGE_S",
    "jwt_signature_bytes",
    "load_telnyx_public_key",
    "parse_twilio_signature_settings",
    "plivo_v2_signature",
    "plivo_v3_matched_signature",
    "plivo_v3_signature",
    "public_url",
    "signature_bytes",
    "twilio_signature",
    "verify_basic_auth",
    "verify_plivo_v2",
    "verify_plivo_v3",
    "verify_plivo_v3_websocket",
    "verify_telnyx",
    "verify_telnyx_stream_token",
    "verify_twilio",
    "verify_vonage_jwt",
    "vonage_application_jwt",
    "vonage_query_payloads",
]
