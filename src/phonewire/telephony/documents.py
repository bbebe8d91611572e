"""The documents that connect a call to the media stream, one builder per provider.

Pure functions from (stream URL, parameters) to the text a provider's call webhook must
answer with. Values are XML-escaped (a caller id is attacker-controlled text).
"""

from __future__ import annotations

import json
from xml.sax.saxutils import escape, quoteattr

__all__ = ["exotel_stream_url", "plivo_stream_xml", "telnyx_texml", "twiml_connect_stream", "vonage_ncco"]


def _parameters(params: dict[str, str]) -> str:
    return "".join(f"<Parameter name={quoteattr(k)} value={quoteattr(v)}/>" for k, v in params.items())


def twiml_connect_stream(ws_url: str, parameters: dict[str, str] | None = None) -> str:
    """TwiML ``<Connect><Stream>``: bidirectional, blocks until our side closes the socket.

    Twilio strips query strings from the stream URL, so call data travels as
    ``<Parameter>``s and arrives in ``start.customParameters``."""
    inner = _parameters(parameters or {})
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Connect><Stream url={quoteattr(ws_url)}>{inner}</Stream></Connect></Response>"
    )


def telnyx_texml(
    ws_url: str, parameters: dict[str, str] | None = None, *, codec: str = "PCMU", sampling_rate: int = 8000
) -> str:
    """Telnyx TeXML ``<Connect><Stream>`` in RTP mode (the default MP3 mode cannot carry
    streamed μ-law: audio would be silently dropped)."""
    attrs = (
        f'url={quoteattr(ws_url)} bidirectionalMode="rtp" bidirectionalCodec={quoteattr(codec)} '
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
    extra = ";".join(f"{k}={v}" for k, v in (parameters or {}).items())
    extra_attr = f" extraHeaders={quoteattr(extra)}" if extra else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<Response><Stream bidirectional="true" keepCallAlive="true" contentType={quoteattr(content_type)}'
        f"{extra_attr}>{escape(ws_url)}</Stream></Response>"
    )


def vonage_ncco(
    ws_url: str, headers: dict[str, str] | None = None, *, content_type: str = "audio/l16;rate=16000"
) -> str:
    """Vonage NCCO ``connect`` to a websocket endpoint; ``headers`` come back flattened in
    the ``websocket:connected`` message."""
    endpoint = {"type": "websocket", "uri": ws_url, "content-type": content_type, "headers": headers or {}}
    return json.dumps([{"action": "connect", "endpoint": [endpoint]}])


def exotel_stream_url(ws_url: str, parameters: dict[str, str] | None = None, *, sample_rate: int = 8000) -> str:
    """The JSON an Exotel Voicebot applet's dynamic-URL endpoint answers with."""
    from urllib.parse import urlencode

    query = urlencode({"sample-rate": sample_rate, **(parameters or {})})
    return json.dumps({"url": f"{ws_url}?{query}"})
