"""The providers' call-control endpoints as ``FakeProviderAPI`` plays them.

Each route matches one documented endpoint (method and path), names the action
("transfer", "dtmf", "create_call", "streaming_start"), reads where a transfer goes, and
answers with the provider's documented success shape: Twilio the call resource (200, 201 on
create), Telnyx ``{"data": {"result": "ok"}}`` (``data.call_control_id`` on dial), Plivo
``{"message": "call transferred"}`` (202) / ``{"message": "call fired", "request_uuid"}``
(201), Vonage 204 on transfer, ``{"message": "DTMF sent"}`` and the new call (201). Failure
answers (``FakeProviderAPI.fail``) use each provider's error shape.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["CONTROL_ROUTES", "ControlRoute", "error_body"]

Reply = Callable[[re.Match[str], Any], tuple[int, Mapping[str, Any] | None]]


@dataclass(frozen=True, slots=True)
class ControlRoute:
    provider: str
    method: str
    path: re.Pattern[str]
    #: (action, transfer target or None) for a request, or None when this route does not apply.
    classify: Callable[[Mapping[str, str], Any], tuple[str, str | None] | None]
    reply: Reply


def _twiml_action(form: Mapping[str, str], body: Any) -> tuple[str, str | None] | None:
    twiml = form.get("Twiml", "")
    if "<Dial" in twiml:
        found = re.search(r"<(?:Number|Sip|Conference)[^>]*>([^<]+)<", twiml)
        return "transfer", found.group(1) if found else None
    return ("dtmf", None) if "<Play digits" in twiml else None


def _twilio_resource(match: re.Match[str], request: Any) -> tuple[int, Mapping[str, Any]]:
    return 200, {"sid": match["call_id"], "account_sid": match["account_id"], "status": "in-progress"}


def _twilio_created(match: re.Match[str], request: Any) -> tuple[int, Mapping[str, Any]]:
    form = request.form
    sid = "CA" + secrets.token_hex(16)
    body = {"sid": sid, "account_sid": match["account_id"], "to": form.get("To"), "from": form.get("From")}
    return 201, {**body, "status": "queued", "direction": "outbound-api", "api_version": "2010-04-01"}


def _telnyx_ok(match: re.Match[str], request: Any) -> tuple[int, Mapping[str, Any]]:
    return 200, {"data": {"result": "ok"}}


def _telnyx_dialled(match: re.Match[str], request: Any) -> tuple[int, Mapping[str, Any]]:
    call = {"call_control_id": "v3:" + secrets.token_urlsafe(24), "call_leg_id": str(uuid.uuid4())}
    return 200, {"data": {**call, "call_session_id": str(uuid.uuid4()), "is_alive": False, "record_type": "call"}}


def _json_field(name: str, action: str) -> Callable[[Mapping[str, str], Any], tuple[str, str | None] | None]:
    def classify(form: Mapping[str, str], body: Any) -> tuple[str, str | None]:
        return action, str(body.get(name)) if isinstance(body, dict) and body.get(name) else None

    return classify


def _plivo_transfer(form: Mapping[str, str], body: Any) -> tuple[str, str | None] | None:
    if not isinstance(body, dict) or "aleg_url" not in body:
        return None
    to = parse_qs(urlsplit(str(body["aleg_url"])).query).get("to", [None])[0]
    return "transfer", to


def _plivo_transferred(match: re.Match[str], request: Any) -> tuple[int, Mapping[str, Any]]:
    return 202, {"message": "call transferred", "api_id": str(uuid.uuid4())}


def _plivo_fired(match: re.Match[str], request: Any) -> tuple[int, Mapping[str, Any]]:
    return 201, {"message": "call fired", "request_uuid": str(uuid.uuid4()), "api_id": str(uuid.uuid4())}


def _vonage_transfer(form: Mapping[str, str], body: Any) -> tuple[str, str | None] | None:
    if not isinstance(body, dict) or body.get("action") != "transfer":
        return None
    try:
        endpoint = body["destination"]["ncco"][0]["endpoint"][0]
    except (KeyError, IndexError, TypeError):
        return "transfer", None
    return "transfer", endpoint.get("number") or endpoint.get("uri")


def _no_content(match: re.Match[str], request: Any) -> tuple[int, None]:
    return 204, None


def _vonage_dtmf(match: re.Match[str], request: Any) -> tuple[int, Mapping[str, Any]]:
    return 200, {"message": "DTMF sent", "uuid": match["call_id"]}


def _vonage_created(match: re.Match[str], request: Any) -> tuple[int, Mapping[str, Any]]:
    call = {"uuid": str(uuid.uuid4()), "status": "started", "direction": "outbound"}
    return 201, {**call, "conversation_uuid": "CON-" + str(uuid.uuid4())}


def _always(action: str) -> Callable[[Mapping[str, str], Any], tuple[str, None]]:
    return lambda form, body: (action, None)


_TWILIO = r"^/2010-04-01/Accounts/(?P<account_id>[^/]+)/Calls"
_TELNYX = r"^/v2/calls/(?P<call_id>[^/]+)/actions/"
_PLIVO = r"^/v1/Account/(?P<account_id>[^/]+)/Call/"
CONTROL_ROUTES: tuple[ControlRoute, ...] = (
    ControlRoute(
        "twilio", "POST", re.compile(_TWILIO + r"/(?P<call_id>[^/]+)\.json$"), _twiml_action, _twilio_resource
    ),
    ControlRoute("twilio", "POST", re.compile(_TWILIO + r"\.json$"), _always("create_call"), _twilio_created),
    ControlRoute("telnyx", "POST", re.compile(_TELNYX + "transfer$"), _json_field("to", "transfer"), _telnyx_ok),
    ControlRoute("telnyx", "POST", re.compile(_TELNYX + "send_dtmf$"), _always("dtmf"), _telnyx_ok),
    ControlRoute("telnyx", "POST", re.compile(_TELNYX + "streaming_start$"), _always("streaming_start"), _telnyx_ok),
    ControlRoute("telnyx", "POST", re.compile(r"^/v2/calls$"), _always("create_call"), _telnyx_dialled),
    ControlRoute("plivo", "POST", re.compile(_PLIVO + r"(?P<call_id>[^/]+)/$"), _plivo_transfer, _plivo_transferred),
    ControlRoute("plivo", "POST", re.compile(_PLIVO + "$"), _always("create_call"), _plivo_fired),
    ControlRoute("vonage", "PUT", re.compile(r"^/v1/calls/(?P<call_id>[^/]+)$"), _vonage_transfer, _no_content),
    ControlRoute("vonage", "PUT", re.compile(r"^/v1/calls/(?P<call_id>[^/]+)/dtmf$"), _always("dtmf"), _vonage_dtmf),
    ControlRoute("vonage", "POST", re.compile(r"^/v1/calls$"), _always("create_call"), _vonage_created),
)

_ERRORS: dict[str, Mapping[str, Any]] = {
    "twilio": {
        "code": 21211,
        "message": "Invalid 'To' Phone Number",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    },
    "telnyx": {
        "errors": [{"code": "90034", "title": "Invalid destination", "detail": "The destination is not valid."}]
    },
    "plivo": {"api_id": "00000000-0000-0000-0000-000000000000", "error": "invalid destination"},
    "vonage": {
        "type": "https://developer.nexmo.com/api-errors#bad-request",
        "title": "Bad Request",
        "detail": "Invalid destination",
    },
}


def error_body(provider: str, status: int) -> Mapping[str, Any]:
    """The provider's error document for a refused request (a 5xx gets a plain message)."""
    if status >= 500:
        return {"message": "simulated server error"}
    return _ERRORS.get(provider, {"message": "refused"})
