"""What the demo's simulated caller does: three questions, one barge-in, a goodbye.

The caller's lines are committed recordings (``phonewire/testing/data/caller_*.wav``, 8 kHz
mu-law; ``make_conversation.sh`` regenerates them). The caller waits for a full second of bot
silence before speaking, longer than the pauses between the bot's sentences, so only the
barge-in talks over the bot - once it has spoken for ``BARGE_IN_AFTER_SECS``, in the middle of
the (long) delivery answer.
"""

from __future__ import annotations

import os

from phonewire.testing import BargeIn, Say, Step, WaitForBotReply, WaitForHangup, builtin_recording

__all__ = ["BARGE_IN_AFTER_SECS", "CALLER_LINES", "conversation_script"]

#: The caller's lines in order, by recording name (caller_<name>.wav), and what they say.
CALLER_LINES = {
    "opening_hours": "What are your opening hours?",
    "sunday_delivery": "Do you deliver on Sundays?",
    "bread_price": "How much is a loaf of bread?",
    "goodbye": "Thanks, goodbye.",
}
BARGE_IN_AFTER_SECS = 1.8
#: Generous: the first call of a process also loads Whisper and Piper.
REPLY_TIMEOUT_SECS = 20.0
QUIET_SECS = 1.0


def conversation_script(first_question: str | os.PathLike[str] | None = None) -> list[Step]:
    """Hear the greeting; ask the hours (or ``first_question``, a WAV); ask about Sunday
    delivery and interrupt the answer with the bread price; hear it; say goodbye and stay on
    the line until the bot hangs up."""
    first = Say.from_wav(first_question or builtin_recording("opening_hours"))

    def reply() -> WaitForBotReply:
        return WaitForBotReply(timeout=REPLY_TIMEOUT_SECS, min_silence=QUIET_SECS)

    return [
        reply(),
        first,
        reply(),
        Say.from_wav(builtin_recording("sunday_delivery")),
        BargeIn.from_wav(BARGE_IN_AFTER_SECS, builtin_recording("bread_price"), timeout=REPLY_TIMEOUT_SECS),
        reply(),
        Say.from_wav(builtin_recording("goodbye")),
        WaitForHangup(timeout=REPLY_TIMEOUT_SECS),
    ]
