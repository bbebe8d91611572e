"""Turn-taking through a real server: VAD turns, barge-in -> clear, and what was heard."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from phonewire.audio.analysis import silence, tone
from phonewire.audio.vad import SileroVADAnalyzer
from phonewire.audio.wav import read_wav
from phonewire.frames import (
    BotStoppedSpeakingFrame,
    PlaybackSource,
    TextFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from support.bots import KeypadBot
from support.echo_app import make_app
from support.server_harness import serve
from support.wire import WireClient

SPEECH = Path(__file__).parents[1] / "fixtures" / "speech" / "hello_8k.wav"
#: Detection needs start_secs (0.2 s) of speech plus up to one 32 ms window; the rest is
#: transport and network on 127.0.0.1. Generous for a loaded CI machine.
BARGE_IN_BOUND_SECS = 0.6


def speech() -> bytes:
    pcm, rate, _ = read_wav(SPEECH)
    assert rate == 8000
    return pcm


def vad_app(**kw: object):  # type: ignore[no-untyped-def]
    return make_app(
        bot=lambda call: KeypadBot(tone(300, 4.0, 24000)),
        on_transport=lambda call: None,
        params={"vad_analyzer": SileroVADAnalyzer()},
        **kw,
    )


def test_caller_turns_are_reported_and_an_onset_in_the_first_100_ms_is_not_missed() -> None:
    async def main() -> list[str]:
        app, calls = vad_app()
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, respond=False)
            await client.handshake()
            await client.stream_audio(silence(0.05, 8000) + speech() + silence(1.2, 8000))
            await client.close()
            await calls[0].wait_finished(5)
        return [
            type(f).__name__
            for f, _ in calls[0].frames
            if isinstance(f, UserStartedSpeakingFrame | UserStoppedSpeakingFrame)
        ]

    turns = asyncio.run(main())
    assert turns[:2] == ["UserStartedSpeakingFrame", "UserStoppedSpeakingFrame"]


def test_talking_over_the_bot_clears_its_audio_within_a_bounded_time_and_reports_what_was_heard() -> None:
    async def main() -> tuple[float, list[float], BotStoppedSpeakingFrame]:
        app, calls = vad_app()
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport)
            await client.handshake()
            client.start_playing()
            await client.dtmf("1")
            # the caller listens to 1 s of the bot, then talks over it
            await client.stream_audio(silence(1.0, 8000))
            onset = time.monotonic()
            await client.stream_audio(speech()[: 8000 * 2])
            await client.stream_audio(silence(0.5, 8000))
            await client.stop_playing()
            await client.close()
        stopped = [f for f, _ in calls[0].tail if isinstance(f, BotStoppedSpeakingFrame)]
        assert client.clear_times, "no clear received"
        return client.clear_times[0] - onset, [s * 1000 for s in client.played_at_clear], stopped[0]

    latency, heard_by_handset, stopped = asyncio.run(main())
    assert 0.15 < latency < BARGE_IN_BOUND_SECS
    assert stopped.interrupted and stopped.source is PlaybackSource.PROVIDER_ACK
    # the transport's account of what the caller heard matches the handset's clock to a packet
    assert abs(stopped.heard_ms - heard_by_handset[0]) <= 20 + 5


class WordsBot(KeypadBot):
    """'1' speaks ten words, each a TextFrame followed by 300 ms of audio (as TTS services send
    word timings); '*' interrupts."""

    async def speak(self, pcm: bytes) -> None:
        await self.push_frame(TTSStartedFrame())
        for word in WORDS:
            await self.push_frame(TextFrame(text=word + " "))
            await self.push_frame(TTSAudioRawFrame(audio=tone(300, 0.3, 24000), sample_rate=24000))
        await self.push_frame(TTSStoppedFrame())


WORDS = "one two three four five six seven eight nine ten".split()


def test_an_interruption_reports_the_text_the_caller_heard() -> None:
    async def main() -> BotStoppedSpeakingFrame:
        app, calls = make_app(bot=lambda call: WordsBot(b""))
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport)
            await client.handshake()
            client.start_playing()
            await client.dtmf("1")
            await asyncio.sleep(1.0)  # the caller listens for a second: that is the scenario
            await client.dtmf("*")
            await calls[0].wait_until(lambda c: any(isinstance(f, BotStoppedSpeakingFrame) for f, _ in c.tail))
            await client.stop_playing()
            await client.close()
        return next(f for f, _ in calls[0].tail if isinstance(f, BotStoppedSpeakingFrame))

    stopped = asyncio.run(main())
    words_started = int(stopped.heard_ms // 300) + 1
    assert stopped.interrupted and 700 < stopped.heard_ms < 1400
    assert stopped.heard_text == "".join(w + " " for w in WORDS[:words_started])
