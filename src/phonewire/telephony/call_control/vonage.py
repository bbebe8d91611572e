"""Vonage Voice API call control: modify a live call, call out, read its event webhooks.

Documented shapes (Vonage Voice API; names as in vonage-python-sdk's ``voice`` package,
``transfer_call_ncco``, ``play_dtmf_into_call``, ``create_call`` and its
``AdvancedMachineDetection`` model):

* transfer: ``PUT /v1/calls/{uuid}`` ``{"action": "transfer", "destination": {"type": "ncco",
  "ncco": [{"action": "connect", "from": ..., "endpoint": [{"type": "phone", "number": ...}]}]}}``
  (application JWT); answer 204;
* DTMF: ``PUT /v1/calls/{uuid}/dtmf`` ``{"digits": "1234"}``; answer 200 ``{"message":
  "DTMF sent", "uuid": ...}``;
* create: ``POST /v1/calls`` ``{"to": [{"type": "phone", "number"}], "from": {"type": "phone",
  "number"}, "answer_url": [our webhook], "event_url": [our events route],
  "advanced_machine_detection": {"behavior": "continue", "mode": "detect_beep"}}``; answer 201
  ``{"uuid", "status": "started", "direction": "outbound", "conversation_uuid"}``;
* events: ``{"uuid", "status": started|ringing|answered|busy|failed|timeout|unanswered|
  rejected|cancelled|completed|human|machine, "sub_state": "beep_start"...}``.

Numbers are E.164 without the ``+`` on Vonage.
"""

from __future__ import annotations

from typing import Any

from phonewire.telephony.call_control.base import CallTarget, ControlRequest
from phonewire.telephony.documents import clean

__all__ = ["amd_result", "create_call_request", "dtmf_request", "event_status", "transfer_request"]

_STATUS = {
    "started": "initiated",
    "timeout": "no-answer",
    "unanswered": "no-answer",
    "rejected": "busy",
    "cancelled": "canceled",
}
_PROGRESS = ("initiated", "ringing", "answered", "completed", "busy", "failed", "no-answer", "canceled")


def _endpoint(to: str) -> dict[str, str]:
    to = clean(to)
    if to.startswith("sip:"):
        return {"type": "sip", "uri": to}
    return {"type": "phone", "number": to.lstrip("+")}


def transfer_request(target: CallTarget, to: str, *, caller_id: str | None = None) -> ControlRequest:
    connect: dict[str, Any] = {"action": "connect", "endpoint": [_endpoint(to)]}
    if caller_id:
        connect["from"] = clean(caller_id).lstrip("+")
    else:
        connect["randomFromNumber"] = True
    body = {"action": "transfer", "destination": {"type": "ncco", "ncco": [connect]}}
    return ControlRequest("transfer", "PUT", target.call_url, dict(target.headers), json=body)


def dtmf_request(target: CallTarget, digits: str) -> ControlRequest:
    return ControlRequest("dtmf", "PUT", f"{target.call_url}/dtmf", dict(target.headers), json={"digits": digits})


def create_call_request(
    api_root: str,
    jwt: str,
    *,
    to: str,
    from_: str,
    answer_url: str,
    event_url: str,
    amd: bool = True,
    timeout_s: int | None = None,
) -> ControlRequest:
    body: dict[str, Any] = {
        "to": [_endpoint(to)],
        "from": {"type": "phone", "number": clean(from_).lstrip("+")},
        "answer_url": [answer_url],
        "answer_method": "GET",
        "event_url": [event_url],
        "event_method": "POST",
    }
    if amd:
        body["advanced_machine_detection"] = {"behavior": "continue", "mode": "detect_beep"}
    if timeout_s:
        body["ringing_timer"] = int(timeout_s)
    headers = {"Authorization": f"Bearer {jwt}"}
    return ControlRequest("create_call", "POST", f"{api_root.rstrip('/')}/v1/calls", headers, json=body)


def event_status(event: dict[str, Any]) -> str | None:
    status = str(event.get("status", ""))
    status = _STATUS.get(status, status)
    return status if status in _PROGRESS else None


def amd_result(event: dict[str, Any]) -> tuple[str, bool] | None:
    status = str(event.get("status", ""))
    if status == "human":
        return "human", False
    if status == "machine":
        return "machine", str(event.get("sub_state", "")) == "beep_start"
    return None
