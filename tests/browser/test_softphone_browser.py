"""The softphone and the console in real headless Chromium, against ``phonewire serve`` running
the conversing demo bot: a call placed from the page is heard, transcribed both ways, timed,
keyed and hung up, and the console shows it live and then ended."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.slow

#: Bounds (ms) for the page to reach each state; generous for a loaded CI machine.
CONNECT_MS = 15_000
GREETING_MS = 20_000
TURN_MS = 45_000


def _softphone(browser: Any, server: Any) -> Any:
    context = browser.new_context(permissions=["microphone"], bypass_csp=True)  # playwright evaluates strings
    page = context.new_page()
    page.goto(f"{server.base}/softphone#key={server.softphone_key}")
    return page


def _console(browser: Any, server: Any) -> Any:
    context = browser.new_context(
        http_credentials={"username": "ops", "password": server.console_token}, bypass_csp=True
    )
    page = context.new_page()
    page.goto(f"{server.base}/calls")
    page.wait_for_function("document.getElementById('conn').textContent.startsWith('Live')", timeout=CONNECT_MS)
    return page


def _state(page: Any) -> dict[str, Any]:
    return dict(page.evaluate("JSON.parse(JSON.stringify(window.phonewireSoftphone))"))


def test_a_call_from_the_page_is_heard_transcribed_timed_keyed_and_hung_up(
    browser: Any, server: Any, screenshots: Any
) -> None:
    console = _console(browser, server)
    page = _softphone(browser, server)
    assert page.url.endswith("/softphone"), "the key left the address bar"
    page.get_by_role("button", name="Call").click()
    page.wait_for_function("window.phonewireSoftphone.status === 'live'", timeout=CONNECT_MS)
    call_id = _state(page)["callId"]
    assert call_id.startswith("softphone-")

    # The console lists the call while it is live (pushed, not polled).
    row = console.locator(f"#live tbody tr[data-call-id='{call_id}']")
    row.wait_for(timeout=CONNECT_MS)
    assert row.locator("td").first.inner_text() == "raw_pcm"

    # The bot's greeting reaches the page's speaker: seconds of audio with real energy.
    page.wait_for_function(
        "window.phonewireSoftphone.playback.playedSecs > 2 && window.phonewireSoftphone.playback.rms > 0.01",
        timeout=GREETING_MS,
    )
    # The fake microphone asks about an order; Whisper hears it, the bot answers: both sides'
    # transcript and the turn's latency appear in the DOM.
    page.locator("#transcript li.line.caller").first.wait_for(timeout=TURN_MS)
    page.locator("#transcript li.line.bot").first.wait_for(timeout=TURN_MS)
    page.locator("#latency li").first.wait_for(timeout=TURN_MS)
    caller_line = page.locator("#transcript li.line.caller").first.inner_text().lower()
    assert "order" in caller_line, caller_line
    assert "ms until you heard the reply" in page.locator("#latency li").first.inner_text()
    assert page.locator("#chart svg rect.stage").count() >= 3
    state = _state(page)
    assert state["marksAcked"] >= 1, "marks are acknowledged once played"
    assert state["framesSent"] > 50, "the microphone's frames reach the server"
    assert state["playback"]["peak"] > 0.05

    # The console's row counts the turn; its detail shows the stages chart and the transcript.
    console.wait_for_function(
        f"(document.querySelector(\"#live tr[data-call-id='{call_id}'] td:nth-child(5)\")?.textContent|0) >= 1",
        timeout=TURN_MS,
    )
    row.get_by_role("button").click()
    console.locator("#detail-chart svg rect.stage").first.wait_for(timeout=CONNECT_MS)
    console.locator("#detail-transcript li.bot").first.wait_for(timeout=CONNECT_MS)

    # Keys from the keypad reach the call (the server counts them).
    page.locator("#keypad button[data-digit='1']").click()
    page.keyboard.press("2")  # the keyboard works as a keypad too
    page.wait_for_function("window.phonewireSoftphone.digits === '12'", timeout=CONNECT_MS)
    shot_phone = screenshots(page, "softphone")
    shot_console = screenshots(console, "console-live")

    # Hang up from the page: the server ends the call, the console moves it to "ended".
    page.get_by_role("button", name="Hang up").click()
    ended = console.locator(f"#ended tbody tr[data-call-id='{call_id}']")
    ended.wait_for(timeout=CONNECT_MS)
    assert ended.locator("td.outcome").inner_text() == "caller_hung_up"
    assert console.locator(f"#live tbody tr[data-call-id='{call_id}']").count() == 0
    screenshots(console, "console-ended")
    snapshot = server.api()
    (record,) = [c for c in snapshot["ended"] if c["call_id"] == call_id]
    assert record["outcome"] == "caller_hung_up"
    assert record["dtmf"] == 2, "both keys reached the server's call"
    assert record["turns"] >= 1 and record["last_latency_ms"] > 0
    assert {line["who"] for line in record["transcript"]} == {"caller", "bot"}
    assert not [c for c in snapshot["live"] if c["call_id"] == call_id]
    assert shot_phone.stat().st_size > 10_000 and shot_console.stat().st_size > 10_000


def test_the_pound_key_reaches_the_bot_which_says_goodbye_and_ends_the_call(browser: Any, server: Any) -> None:
    page = _softphone(browser, server)
    page.get_by_role("button", name="Call").click()
    page.wait_for_function("window.phonewireSoftphone.status === 'live'", timeout=CONNECT_MS)
    page.get_by_role("button", name="Mute").click()  # the fake microphone's question would barge in
    assert page.get_by_role("button", name="Unmute").get_attribute("aria-pressed") == "true"
    page.locator("#keypad button[data-digit='#']").click()
    # The demo bot answers # with its goodbye and hangs up: the server closes the socket.
    page.wait_for_function("window.phonewireSoftphone.status === 'ended'", timeout=TURN_MS)
    state = _state(page)
    assert state["closeCode"] == 1000
    call_id = state["callId"]
    (record,) = [c for c in server.api()["ended"] if c["call_id"] == call_id]
    assert record["outcome"] == "completed", record
    assert any("goodbye" in line["text"].lower() for line in record["transcript"] if line["who"] == "bot"), record
