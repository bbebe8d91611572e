"""Caller scripts, run packet by packet without a socket or a clock."""

from __future__ import annotations

import pytest

from phonewire.audio.analysis import silence, tone
from phonewire.audio.wav import read_wav
from phonewire.exceptions import ConfigurationError
from phonewire.testing.script import (
    BargeIn,
    CallerView,
    HangUp,
    Packet,
    Press,
    Say,
    ScriptRunner,
    Silence,
    Step,
    WaitForBotAudio,
    WaitForBotReply,
    WaitForBotSilence,
    builtin_recording,
    default_script,
)

RATE = 8000
PACKET_S = 0.02


def drive(
    steps: list[Step], bot_audible: list[bool] | None = None, limit: int = 2000
) -> tuple[list[Packet], CallerView]:
    """Run ``steps`` until the caller hangs up; the bot is audible on the ticks flagged True."""
    caller = CallerView(RATE, PACKET_S)
    runner = ScriptRunner(steps, caller)
    packets = []
    for k in range(limit):
        heard = bot_audible[k] if bot_audible and k < len(bot_audible) else False
        caller.hear(k * PACKET_S, heard)
        packet = runner.next_packet()
        packets.append(packet)
        if packet.hangup:
            return packets, caller
    raise AssertionError("the script never ended")


def test_say_sends_its_audio_in_padded_20ms_packets_and_logs_when_the_speech_ended() -> None:
    words = silence(0.1, RATE) + tone(440, 0.25, RATE)  # 350 ms: 17.5 packets
    packets, caller = drive([Silence(0.1), Say(words)])
    spoken = [p for p in packets if p.pcm is not None]
    assert len(spoken) == 18 and all(len(p.pcm or b"") == 320 for p in spoken)
    assert b"".join(p.pcm or b"" for p in spoken) == words + bytes(160)
    [utterance] = caller.log.utterances
    assert utterance.start_s == pytest.approx(0.1)
    assert utterance.speech_start_s == pytest.approx(0.2)
    assert utterance.speech_end_s == pytest.approx(0.45)
    assert packets[-1] == Packet(hangup=True)


def test_say_resamples_to_the_wire_rate() -> None:
    packets, _ = drive([Say(tone(440, 0.2, 16000), rate=16000)])
    assert sum(1 for p in packets if p.pcm) == 10


def test_press_sends_one_dtmf_event_per_digit_at_the_given_interval() -> None:
    packets, caller = drive([Press("12#", interval=0.1)])
    presses = [(k, p.dtmf) for k, p in enumerate(packets) if p.dtmf]
    assert presses == [(0, "1"), (5, "2"), (10, "#")]
    assert [d for _, d in caller.log.dtmf] == ["1", "2", "#"]


def test_press_refuses_keys_a_phone_does_not_have() -> None:
    with pytest.raises(ConfigurationError):
        Press("1x")


def test_waiting_for_bot_audio_stays_silent_until_the_bot_is_heard() -> None:
    audible = [False] * 30 + [True] * 10
    packets, caller = drive([WaitForBotAudio(timeout=5), HangUp()], audible)
    assert len(packets) == 31 and all(p.pcm is None for p in packets[:-1])
    assert caller.log.notes == []


def test_a_wait_that_times_out_is_noted_and_the_script_moves_on() -> None:
    packets, caller = drive([WaitForBotAudio(timeout=0.5)])
    assert len(packets) == 26
    assert "gave up after 0.5 s" in caller.log.notes[0]


def test_waiting_for_a_reply_waits_for_speech_then_for_silence() -> None:
    audible = [False] * 20 + [True] * 50 + [False] * 100
    packets, _ = drive([WaitForBotReply(timeout=10, min_silence=0.6)], audible)
    assert len(packets) == 20 + 50 + 29 + 1  # silent for 0.6 s on the 30th quiet tick


def test_waiting_for_silence_ignores_pauses_shorter_than_min_silence() -> None:
    audible = [True] * 10 + [False] * 10 + [True] * 10 + [False] * 100
    packets, _ = drive([WaitForBotSilence(timeout=10, min_silence=0.4)], audible)
    assert len(packets) == 30 + 19 + 1


def test_barge_in_talks_once_the_bot_has_talked_long_enough() -> None:
    audible = [False] * 10 + [True] * 200
    packets, caller = drive([BargeIn(0.5, tone(300, 0.1, RATE))], audible)
    first_spoken = next(k for k, p in enumerate(packets) if p.pcm)
    assert first_spoken == 10 + 24  # on its 25th audible tick the bot has talked 0.5 s
    [utterance] = caller.log.utterances
    assert utterance.barge_in and utterance.start_s == pytest.approx(0.68)


def test_a_barge_in_on_a_silent_bot_says_its_words_anyway_without_counting_as_one() -> None:
    _, caller = drive([BargeIn(0.5, tone(300, 0.1, RATE), timeout=0.4)])
    [utterance] = caller.log.utterances
    assert not utterance.barge_in
    assert "never talked" in caller.log.notes[0]


def test_the_built_in_recordings_are_short_8khz_mono_speech() -> None:
    for name in ("hello", "thanks"):
        pcm, rate, channels = read_wav(builtin_recording(name))
        assert (rate, channels) == (8000, 1)
        assert 1.0 < len(pcm) / 2 / rate < 3.0
    with pytest.raises(ConfigurationError):
        builtin_recording("no_such_line")


def test_the_default_script_greets_asks_keys_barges_in_and_presses_hash() -> None:
    steps = default_script()
    kinds = [type(s).__name__ for s in steps]
    assert kinds == ["WaitForBotReply", "Say", "WaitForBotReply", "Press", "BargeIn", "WaitForBotReply", "Press",
                     "WaitForHangup"]  # fmt: skip
    assert [s.digits for s in steps if isinstance(s, Press)] == ["123", "#"]


def test_the_default_script_can_ask_with_the_users_own_recording(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from phonewire.audio.wav import write_wav

    path = tmp_path / "question.wav"
    write_wav(path, tone(500, 0.3, 16000), 16000)
    say = default_script(path)[1]
    assert isinstance(say, Say) and say.rate == 16000 and say.label == "question"


def test_a_stereo_wav_is_mixed_down_to_mono(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from phonewire.audio.wav import write_wav

    left = np.frombuffer(tone(440, 0.1, RATE), dtype="<i2")
    stereo = np.column_stack((left, np.zeros_like(left))).astype("<i2").tobytes()
    write_wav(tmp_path / "both.wav", stereo, RATE, channels=2)
    say = Say.from_wav(tmp_path / "both.wav")
    assert say.pcm == (left // 2).astype("<i2").tobytes()
