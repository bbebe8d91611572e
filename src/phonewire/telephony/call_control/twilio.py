"""Twilio call control: TwiML on the live call (Calls API), outbound calls, callbacks.

Documented shapes (Twilio Voice API, Call resource; verified against twilio-python's
``CallList.create`` / ``CallContext.update`` parameter names):

* update a live call: ``POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`` with
  ``Twiml=<Response>...</Response>`` (form encoded, HTTP Basic). New TwiML replaces the
  ``<Connect><Stream>``, so Twilio ends the media stream on its own;
* create a call: ``POST .../Accounts/{AccountSid}/Calls.json`` with ``To``, ``From``, ``Url``
  (or ``Twiml``), ``StatusCallback``, ``StatusCallbackEvent`` (repeated: initiated ringing
  answered completed), ``MachineDetection`` (``Enable``/``DetectMessageEnd``), ``AsyncAmd=true``
  and ``AsyncAmdStatusCallback``; the answer is the call resource (201, ``sid``);
* status callbacks post ``CallSid``, ``CallStatus`` (queued, ringing, in-progress, completed,
  busy, failed, no-answer, canceled); the async AMD callback posts ``AnsweredBy`` (human,
  machine_start, machine_end_beep, machine_end_silence, machine_end_other, fax, unknown).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from phonewire.serializers._ids import TWILIO_ACCOUNT_SID, invalid_id_reason
from phonewire.telephony.call_control.base import CallTarget, ControlRequest, Unsupported
from phonewire.telephony.documents import clean

__all__ = [
    "STATUS_EVENTS",
    "amd_result",
    "conference_twiml",
    "create_call_request",
    "dial_twiml",
    "dtmf_request",
    "normalise_status",
    "transfer_request",
    "update_request",
]

STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
_STATUS = {"in-progress": "answered", "queued": "initiated"}


def _endpoint(to: str) -> str:
    to = clean(to)
    if to.startswith("sip:"):
        return f"<Sip>{escape(to)}</Sip>"
    return f"<Number>{escape(to)}</Number>"


def dial_twiml(to: str, *, caller_id: str | None = None, timeout_s: int = 30) -> str:
    """``<Dial>`` the person: the caller is bridged to them, the bot's stream is over."""
    attrs = f' timeout="{int(timeout_s)}"'
    if caller_id:
        attrs += f" callerId={quoteattr(clean(caller_id))}"
    return f"<Response><Dial{attrs}>{_endpoint(to)}</Dial></Response>"


def conference_twiml(room: str, *, say: str | None = None, starts: bool, ends: bool) -> str:
    """One side of a warm transfer: optionally ``<Say>`` (the briefing), then the room."""
    said = f"<Say>{escape(clean(say))}</Say>" if say else ""
    attrs = f'startConferenceOnEnter="{str(starts).lower()}" endConferenceOnExit="{str(ends).lower()}"'
    return f"<Response>{said}<Dial><Conference {attrs}>{escape(clean(room))}</Conference></Dial></Response>"


def update_request(target: CallTarget, twiml: str, action: str) -> ControlRequest:
    return ControlRequest(action, "POST", target.call_url, dict(target.headers), form={"Twiml": twiml})


def transfer_request(target: CallTarget, to: str, *, caller_id: str | None = None) -> ControlRequest:
    """Cold transfer: replace the call's TwiML with ``<Dial>``."""
    return update_request(target, dial_twiml(to, caller_id=caller_id), "transfer")


def dtmf_request(target: CallTarget, digits: str, *, then_twiml: str) -> ControlRequest:
    """``<Play digits>`` on the live call. It replaces the stream, so ``then_twiml`` (e.g. a
    fresh ``<Connect><Stream>``) says what follows; in-band tones over the stream
    (``OutputDTMFFrame``) keep the stream and are what the tools use."""
    rest = then_twiml.removeprefix("<Response>").removesuffix("</Response>")
    return update_request(target, f"<Response><Play digits={quoteattr(digits)}/>{rest}</Response>", "dtmf")


def create_call_request(
    api_root: str,
    account_sid: str,
    headers: Mapping[str, str],
    *,
    to: str,
    from_: str,
    url: str | None = None,
    twiml: str | None = None,
    status_callback: str | None = None,
    amd_callback: str | None = None,
    amd_mode: str = "DetectMessageEnd",
    timeout_s: int | None = None,
) -> ControlRequest:
    """Create a call (``headers``: HTTP Basic). ``url`` (our signed webhook, which mints
    the stream token for the new CallSid) or ``twiml`` says what runs once answered."""
    reason = invalid_id_reason("account_sid", account_sid, TWILIO_ACCOUNT_SID)
    if reason:
        raise Unsupported(f"twilio: {reason}")
    form: dict[str, str | list[str]] = {"To": clean(to), "From": clean(from_)}
    if url:
        form["Url"] = url
    if twiml:
        form["Twiml"] = twiml
    if status_callback:
        form.update(StatusCallback=status_callback, StatusCallbackMethod="POST")
        form["StatusCallbackEvent"] = list(STATUS_EVENTS)
    if amd_callback:
        form.update(MachineDetection=amd_mode, AsyncAmd="true", AsyncAmdStatusCallback=amd_callback)
        form["AsyncAmdStatusCallbackMethod"] = "POST"
    if timeout_s:
        form["Timeout"] = str(int(timeout_s))
    url_path = f"{api_root.rstrip('/')}/2010-04-01/Accounts/{quote(account_sid, safe='')}/Calls.json"
    return ControlRequest("create_call", "POST", url_path, dict(headers), form=form)


def normalise_status(fields: Mapping[str, str]) -> str:
    status = fields.get("CallStatus", "")
    return _STATUS.get(status, status)


def amd_result(answered_by: str) -> tuple[str, bool]:
    """(result, beep) from ``AnsweredBy``."""
    if answered_by == "human":
        return "human", False
    if answered_by.startswith("machine"):
        return "machine", answered_by in ("machine_end_beep", "machine_end_silence", "machine_end_other")
    return ("fax", False) if answered_by == "fax" else ("unknown", False)
