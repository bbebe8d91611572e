"""Telnyx Call Control: commands on a live call, dialling out, the webhooks that follow.

Documented shapes (Telnyx Call Control API v2; field names as in telnyx-python's
``ActionTransferParams`` / ``ActionSendDtmfParams`` / ``CallDialParams``):

* ``POST /v2/calls/{call_control_id}/actions/transfer`` JSON ``{"to": ..., "from": ...}``
  (``from`` defaults to the call's own number); answer ``{"data": {"result": "ok"}}``. If the
  person never answers Telnyx sends ``call.hangup`` for leg B and the caller's leg stays up;
* ``POST .../actions/send_dtmf`` ``{"digits": "1www2", "duration_millis": 250}``;
* ``POST /v2/calls`` ``{"connection_id", "to", "from", "webhook_url", "client_state",
  "answering_machine_detection": "detect"|"detect_beep"|"premium"...}``; the answer's
  ``data.call_control_id`` names the new call. The stream starts at ``call.answered`` with
  ``POST .../actions/streaming_start`` (``stream_url``, ``stream_track``,
  ``stream_bidirectional_mode: "rtp"``, ``custom_parameters: [{"name","value"}]``), so its
  token is minted for the id a signed webhook named;
* webhooks: ``{"data": {"event_type": "call.answered"|"call.hangup"|
  "call.machine.detection.ended"|..., "payload": {"call_control_id", "client_state",
  "result", "hangup_cause"}}}``, signed with Ed25519.
"""

from __future__ import annotations

import base64
from typing import Any

from phonewire.serializers._ids import TELNYX_CALL_CONTROL_ID, invalid_id_reason, segment
from phonewire.telephony.call_control.base import CallTarget, ControlRequest, Unsupported
from phonewire.telephony.documents import clean

__all__ = [
    "amd_result",
    "dial_request",
    "dtmf_request",
    "event_status",
    "streaming_start_request",
    "transfer_request",
]

_HANGUP_STATUS = {"busy": "busy", "timeout": "no-answer", "no_answer": "no-answer", "call_rejected": "busy"}


def _command(target: CallTarget, action: str, body: dict[str, Any]) -> ControlRequest:
    return ControlRequest(action, "POST", f"{target.call_url}/actions/{action}", dict(target.headers), json=body)


def transfer_request(target: CallTarget, to: str, *, caller_id: str | None = None) -> ControlRequest:
    body = {"to": clean(to)}
    if caller_id:
        body["from"] = clean(caller_id)
    return _command(target, "transfer", body)


def dtmf_request(target: CallTarget, digits: str, *, duration_ms: int = 250) -> ControlRequest:
    return _command(target, "send_dtmf", {"digits": digits, "duration_millis": int(duration_ms)})


def dial_request(
    api_root: str,
    api_key: str,
    *,
    connection_id: str,
    to: str,
    from_: str,
    webhook_url: str,
    ref: str,
    amd: str | None = "detect",
    timeout_s: int | None = None,
) -> ControlRequest:
    body: dict[str, Any] = {
        "connection_id": connection_id,
        "to": clean(to),
        "from": clean(from_),
        "webhook_url": webhook_url,
        "webhook_url_method": "POST",
        "client_state": base64.b64encode(ref.encode()).decode(),
    }
    if amd:
        body["answering_machine_detection"] = amd
    if timeout_s:
        body["timeout_secs"] = int(timeout_s)
    headers = {"Authorization": f"Bearer {api_key}"}
    return ControlRequest("create_call", "POST", f"{api_root.rstrip('/')}/v2/calls", headers, json=body)


def streaming_start_request(
    api_root: str,
    api_key: str,
    call_control_id: str,
    *,
    stream_url: str,
    parameters: dict[str, str],
    codec: str = "PCMU",
    sampling_rate: int = 8000,
) -> ControlRequest:
    reason = invalid_id_reason("call_control_id", call_control_id, TELNYX_CALL_CONTROL_ID)
    if reason:
        raise Unsupported(f"telnyx: {reason}")
    body = {
        "stream_url": stream_url,
        "stream_track": "inbound_track",
        "stream_bidirectional_mode": "rtp",
        "stream_bidirectional_codec": codec,
        "stream_bidirectional_sampling_rate": int(sampling_rate),
        "custom_parameters": [{"name": k, "value": v} for k, v in parameters.items()],
    }
    url = f"{api_root.rstrip('/')}/v2/calls/{segment(call_control_id, safe=':=')}/actions/streaming_start"
    return ControlRequest("streaming_start", "POST", url, {"Authorization": f"Bearer {api_key}"}, json=body)


def event_status(event_type: str, payload: dict[str, Any]) -> str | None:
    """The call-progress status a webhook means, or None for other events."""
    if event_type == "call.initiated":
        return "initiated"
    if event_type == "call.answered":
        return "answered"
    if event_type == "call.hangup":
        cause = str(payload.get("hangup_cause", ""))
        return _HANGUP_STATUS.get(cause, "failed" if cause in ("unspecified", "call_failed") else "completed")
    return None


def amd_result(event_type: str, payload: dict[str, Any]) -> tuple[str, bool] | None:
    """(result, beep) of an AMD webhook, or None for other events."""
    if event_type in ("call.machine.greeting.ended", "call.machine.premium.greeting.ended"):
        return "machine", True
    if event_type not in ("call.machine.detection.ended", "call.machine.premium.detection.ended"):
        return None
    result = str(payload.get("result", ""))
    if result.startswith("human"):
        return "human", False
    return ("machine", False) if result.startswith("machine") else ("unknown", False)
