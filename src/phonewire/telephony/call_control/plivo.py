"""Plivo call control: transfer a live call to new XML, call out, read its callbacks.

Documented shapes (Plivo Voice API; names as in plivo-python's ``Calls.update`` /
``Calls.create``):

* transfer: ``POST /v1/Account/{auth_id}/Call/{call_uuid}/`` with ``legs=aleg``,
  ``aleg_url`` (a URL answering Plivo XML, here ``<Dial><Number>``) and ``aleg_method``;
  HTTP Basic ``auth_id:auth_token``; answer 202 ``{"message": "call transferred", ...}``;
* create: ``POST /v1/Account/{auth_id}/Call/`` with ``from``, ``to``, ``answer_url``,
  ``answer_method``, ``ring_url``, ``hangup_url``, ``machine_detection`` ("true") and
  ``machine_detection_url``; answer 201 ``{"message": "call fired", "request_uuid": ...}``.
  The answer URL is our signed webhook, which mints the stream token for the ``CallUUID``;
* callbacks post ``CallUUID``, ``CallStatus`` (ringing, in-progress, completed, busy,
  no-answer, failed, cancel) and, for machine detection, ``Machine`` ("true"/"false").

DTMF out needs no REST call: Plivo streams take ``sendDTMF`` (``OutputDTMFFrame``).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape, quoteattr

from phonewire.serializers._ids import PLIVO_AUTH_ID, invalid_id_reason
from phonewire.telephony.call_control.base import CallTarget, ControlRequest, Unsupported
from phonewire.telephony.documents import clean
from phonewire.telephony.rest_auth import basic_auth_header

__all__ = ["amd_result", "create_call_request", "dial_xml", "normalise_status", "transfer_request", "transfer_xml_url"]

_STATUS = {"in-progress": "answered", "cancel": "canceled", "timeout": "no-answer"}


def transfer_xml_url(public_base: str, to: str, caller_id: str | None = None) -> str:
    """Our route that answers Plivo's fetch of the transfer XML (signed by Plivo, query included)."""
    query = {"to": clean(to), **({"caller_id": clean(caller_id)} if caller_id else {})}
    return f"{public_base.rstrip('/')}/call-control/plivo/transfer?{urlencode(query)}"


def dial_xml(to: str, caller_id: str | None = None) -> str:
    attrs = f" callerId={quoteattr(clean(caller_id))}" if caller_id else ""
    to = clean(to)
    kind = "User" if to.startswith("sip:") else "Number"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Response><Dial{attrs}><{kind}>{escape(to)}</{kind}></Dial></Response>'
    )


def transfer_request(target: CallTarget, aleg_url: str) -> ControlRequest:
    body = {"legs": "aleg", "aleg_url": aleg_url, "aleg_method": "POST"}
    return ControlRequest("transfer", "POST", target.call_url, dict(target.headers), json=body)


def create_call_request(
    api_root: str,
    auth_id: str,
    auth_token: str,
    *,
    to: str,
    from_: str,
    answer_url: str,
    status_url: str | None = None,
    amd_url: str | None = None,
    timeout_s: int | None = None,
) -> ControlRequest:
    reason = invalid_id_reason("auth_id", auth_id, PLIVO_AUTH_ID)
    if reason:
        raise Unsupported(f"plivo: {reason}")
    body: dict[str, str] = {"from": clean(from_), "to": clean(to), "answer_url": answer_url, "answer_method": "POST"}
    if status_url:
        body.update(ring_url=status_url, ring_method="POST", hangup_url=status_url, hangup_method="POST")
    if amd_url:
        body.update(machine_detection="true", machine_detection_url=amd_url, machine_detection_method="POST")
    if timeout_s:
        body["ring_timeout"] = str(int(timeout_s))
    url = f"{api_root.rstrip('/')}/v1/Account/{quote(auth_id, safe='')}/Call/"
    return ControlRequest(
        "create_call", "POST", url, {"Authorization": basic_auth_header(auth_id, auth_token)}, json=body
    )


def normalise_status(fields: Mapping[str, str]) -> str:
    status = fields.get("CallStatus", "")
    return _STATUS.get(status, status)


def amd_result(fields: Mapping[str, str]) -> tuple[str, bool]:
    machine = fields.get("Machine", "").lower()
    return ("machine", False) if machine == "true" else ("human", False) if machine == "false" else ("unknown", False)
