"""Exotel end to end through a real server: the call, the missing hang-up API, and Exotel's
outbound chunk rules (formats and DTMF: test_e2e_media.py; marks and clear: test_e2e_playback.py)."""

from __future__ import annotations

import asyncio

import pytest

from phonewire.audio.analysis import tone
from phonewire.serializers.base import MediaFormat
from support.provider_calls import assert_clean_call, echo_call, goodbye_call, utterance
from support.wire import EXOTEL_ACCOUNT_SID, EXOTEL_CALL_SID, EXOTEL_FROM, EXOTEL_STREAM_SID, EXOTEL_TO, exotel


def test_an_exotel_call_runs_from_connected_and_start_to_stop() -> None:
    client = exotel({"lang": "hi-IN", "campaign": "renewals"})
    call, wire = asyncio.run(echo_call("exotel", client, pcm=tone(440, 0.4, 8000)))
    assert call.transport is not None
    info = call.transport.call_info
    ids = (info.provider, info.call_id, info.stream_id, info.account_id)
    assert ids == ("exotel", EXOTEL_CALL_SID, EXOTEL_STREAM_SID, EXOTEL_ACCOUNT_SID)
    numbers = (info.from_number, info.to_number)
    assert (numbers, info.media_format) == ((EXOTEL_FROM, EXOTEL_TO), MediaFormat("l16", 8000, 1))
    assert info.custom_parameters == {"lang": "hi-IN", "campaign": "renewals"}
    assert call.transport.stats.close_reason == "stop"
    assert_clean_call(call, wire, audio_in_ms=400)


def test_ending_an_exotel_call_skips_the_rest_hang_up_and_closes_the_stream() -> None:
    goodbye = asyncio.run(goodbye_call("exotel", exotel()))
    assert goodbye.code == 1000  # closing the socket is how the flow moves on to its Hangup applet
    assert goodbye.hangup is not None and goodbye.hangup.startswith("skipped:") and "no REST hang-up" in goodbye.hangup
    assert goodbye.wire.pcm(), "the goodbye was played before closing"


@pytest.mark.parametrize(("rate", "chunk"), [(8000, 3200), (16000, 3200), (24000, 4800)])
def test_exotel_outbound_chunks_are_multiples_of_320_bytes_and_at_least_3200_but_the_last(
    rate: int, chunk: int
) -> None:
    client = asyncio.run(utterance("exotel", exotel(sample_rate=rate), 0.45))
    sizes = [len(p) for p in client.payloads]
    assert sizes and all(size % 320 == 0 for size in sizes), sizes
    assert all(size == chunk for size in sizes[:-1]), sizes  # 100 ms, never under Exotel's 3.2 KB minimum
    assert 0 < sizes[-1] <= chunk
    assert sum(sizes) == pytest.approx(0.45 * rate * 2, abs=320)
    last_media = max(i for i, (_, m) in enumerate(client.received) if client.audio_payload(m) is not None)
    assert any(client.mark_of(m) for _, m in client.received[last_media + 1 :]), "the short chunk ends the utterance"
