"""The documents that connect a call to the media stream, one builder per provider.

Pure functions from (stream URL, parameters) to the text a provider's call webhook must
answer with. A caller id is attacker-controlled text, so every builder first drops control
characters and anything else XML 1.0 cannot carry (``clean``: one stray ``\\x01`` in a From
makes the whole TwiML ill-formed and Twilio drops the call), then XML-escapes. Plivo's
``extraHeaders`` is a ``key=value;key=value`` string with no escaping, so a value holding
``;``, ``,`` or ``=`` would smuggle extra fields (``role=admin``): such a value is left out.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode
from xml.sax.saxutils import escape, quoteattr

__all__ = [
    "clean",
    "exotel_stream_url",
    "plivo_extra_headers",
    "plivo_stream_xml",
    "telnyx_texml",
    "twiml_connect_stream",
    "vonage_ncco",
]

# C0 and C1 controls, DEL, lone surrogates and the XML non-characters U+FFFE/U+FFFF.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_PLIVO_SEPARATORS = re.compile("[;,=]")
_PLIVO_KEY = re.compile("[A-Za-z0-9]+")


def clean(text: str) -> str:
    """``text`` without the characters no answer document may carry (see the module docstring)."""
    return _UNSAFE.sub("", text)


def _clean_all(params: dict[str, str] | None) -> dict[str, str]:
    return {clean(k): clean(v) for k, v in (params or {}).items()}


def _parameters(params: dict[str, str]) -> str:
    return "".join(f"<Parameter name={quoteattr(k)} value={quoteattr(v)}/>" for k, v in _clean_all(params).items())


def plivo_extra_headers(params: dict[str, str] | None) -> str:
    """``key=value;key=value`` for Plivo's ``extraHeaders``; keys must be alphanumeric (Plivo's
    documented rule), and a value with a separator in it is dropped rather than split."""
    pairs = []
    for key, value in _clean_all(params).items():
        if not _PLIVO_KEY.fullmatch(key):
            raise ValueError(f"Plivo extraHeaders keys must be alphanumeric: {key!r}")
        if value and not _PLIVO_SEPARATORS.search(value):
            pairs.append(f"{key}={value}")
    return ";".join(pairs)


def twiml_connect_stream(ws_url: str, parameters: dict[str, str] | None = None) -> str:
    """TwiML ``<Connect><Stream>``: bidirectional, blocks until our side closes the socket.

    Twilio strips query strings from the stream URL, so call data travels as
    ``<Parameter>``s and arrives in ``start.customParameters``."""
    inner = _parameters(parameters or {})
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Connect><Stream url={quoteattr(clean(ws_url))}>{inner}</Stream></Connect></Response>"
    )


def telnyx_texml(
    ws_url: str, parameters: dict[str, str] | None = None, *, codec: str = "PCMU", sampling_rate: int = 8000
) -> str:
    """Telnyx TeXML ``<Connect><Stream>`` in RTP mode (the default MP3 mode cannot carry
    streamed μ-law: audio would be silently dropped)."""
    attrs = (
        f'url={quoteattr(clean(ws_url))} bidirectionalMode="rtp" bidirectionalCodec={quoteattr(clean(codec))} '
        f'bidirectionalSamplingRate="{int(sampling_rate)}"'
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Connect><Stream {attrs}>{_parameters(parameters or {})}</Stream></Connect></Response>"
    )


def plivo_stream_xml(
    ws_url: str, parameters: dict[str, str] | None = None, *, content_type: str = "audio/x-mulaw;rate=8000"
) -> str:
    """Plivo XML ``<Stream bidirectional keepCallAlive>``: without keepCallAlive the call
    drops as soon as the XML runs out. Parameters travel in ``extraHeaders``."""
    extra = plivo_extra_headers(parameters)
    extra_attr = f" extraHeaders={quoteattr(extra)}" if extra else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<Response><Stream bidirectional="true" keepCallAlive="true" contentType={quoteattr(clean(content_type))}'
        f"{extra_attr}>{escape(clean(ws_url))}</Stream></Response>"
    )


def vonage_ncco(
    ws_url: str, headers: dict[str, str] | None = None, *, content_type: str = "audio/l16;rate=16000"
) -> str:
    """Vonage NCCO ``connect`` to a websocket endpoint; ``headers`` come back flattened in
    the ``websocket:connected`` message."""
    endpoint = {"type": "websocket", "uri": clean(ws_url), "content-type": content_type, "headers": _clean_all(headers)}
    return json.dumps([{"action": "connect", "endpoint": [endpoint]}])


def exotel_stream_url(ws_url: str, parameters: dict[str, str] | None = None, *, sample_rate: int = 8000) -> str:
    """The JSON an Exotel Voicebot applet's dynamic-URL endpoint answers with."""
    query = urlencode({"sample-rate": sample_rate, **_clean_all(parameters)})
    return json.dumps({"url": f"{clean(ws_url)}?{query}"})
