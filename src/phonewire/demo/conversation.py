"""The conversing demo bot: Whisper hears the caller, a brain answers, Piper speaks.

    transport.input() -> WhisperSTTService -> user aggregator -> brain -> CallControl
        -> PiperTTSService -> transport.output() -> assistant aggregator

The brain is ``RulesLLMService`` (keyword rules, fixed answers; ``brain.py``) unless
``PHONEWIRE_DEMO_BRAIN`` says ``llm``, or says ``auto`` (the default) and ``OPENAI_API_KEY`` or
``OPENAI_BASE_URL`` is set: then it is ``OpenAILLMService`` (``OPENAI_MODEL``, default
gpt-4.1-mini) with the same facts as its system prompt. Turns end on the transport's VAD, and
the caller can talk over the bot (the transport's barge-in clears the reply).

Turn-taking: phonewire's default turn strategies (``phonewire.turns.UserTurnStrategies``: Smart
Turn plus the transcript, deciding at 0.2 s of silence; docs/turn-taking.md) where this
phonewire has them, else the transport's VAD alone (a turn ends on 0.8 s of silence).

Serve it with ``phonewire serve --bot phonewire.demo.conversation:conversation_bot`` (what
``phonewire demo`` does); needs ``pip install "phonewire[local]"``. With
``PHONEWIRE_DEMO_RESULTS_DIR`` set, each call's transcripts, replies and latency stages are
written there at call end (``results.py``) for the demo's report.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from phonewire.demo.brain import GREETING, SYSTEM_PROMPT, RulesLLMService
from phonewire.demo.control import CallControl
from phonewire.demo.results import RESULTS_DIR_ENV, CallResults, conversation_turns, write_results
from phonewire.frames import TTSSpeakFrame
from phonewire.pipeline import Pipeline, PipelineRunner, PipelineTask
from phonewire.processors.aggregators import LLMContext, LLMContextAggregatorPair, LLMUserAggregatorParams
from phonewire.serializers.base import CallInfo
from phonewire.services.llm_service import LLMService
from phonewire.services.local import PiperTTSService, WhisperSTTService

__all__ = ["BRAIN_ENV", "conversation_bot", "make_brain"]

logger = logging.getLogger("phonewire.demo")

BRAIN_ENV = "PHONEWIRE_DEMO_BRAIN"


def make_brain(choice: str | None = None) -> tuple[LLMService, str]:
    """The brain and a description of it: "rules", "llm", or "auto" (llm when configured)."""
    choice = (choice or os.environ.get(BRAIN_ENV) or "auto").lower()
    configured = bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))
    if choice == "llm" or (choice == "auto" and configured):
        from phonewire.services.openai import OpenAILLMService

        base_url = os.environ.get("OPENAI_BASE_URL") or None
        model = os.environ.get("OPENAI_MODEL") or "gpt-4.1-mini"
        # A local OpenAI-compatible server (Ollama, llama.cpp, vLLM) takes any key.
        key = os.environ.get("OPENAI_API_KEY") or ("not-needed" if base_url else None)
        llm = OpenAILLMService(api_key=key, base_url=base_url, model=model)
        return llm, f"OpenAI-compatible LLM {model} at {base_url or 'api.openai.com'}"
    if choice not in ("auto", "rules"):
        raise ValueError(f"{BRAIN_ENV} must be auto, rules or llm, not {choice!r}")
    rules = RulesLLMService()
    return rules, f"keyword rules, fixed answers ({len(rules.rules)} rules + fallback); no LLM"


def turn_taking(transport: Any) -> tuple[LLMUserAggregatorParams | None, str]:
    """The default turn strategies and the pause-length VAD they need, if they exist here."""
    try:
        from phonewire.turns import TURN_ANALYZER_VAD_PARAMS, UserTurnStrategies
    except ImportError:
        return None, "VAD silence (0.8 s)"
    vad = getattr(transport.params, "vad_analyzer", None)
    if vad is None:
        return None, "no VAD: transcripts end turns"
    vad.set_params(TURN_ANALYZER_VAD_PARAMS)  # the VAD reports pauses; the strategies end turns
    strategies: dict[str, Any] = {"user_turn_strategies": UserTurnStrategies()}
    params = LLMUserAggregatorParams(**strategies)
    return params, "Smart Turn + transcript (phonewire default strategies)"


async def conversation_bot(transport: Any, call: CallInfo) -> None:
    max_secs = float(os.environ.get("PHONEWIRE_DEMO_MAX_CALL_SECS", "120"))
    brain, brain_name = make_brain()
    stt = WhisperSTTService()
    tts = PiperTTSService()
    context = LLMContext([{"role": "system", "content": SYSTEM_PROMPT}])
    user_params, turns_name = turn_taking(transport)
    pair = LLMContextAggregatorPair(context, user_params=user_params)
    control = CallControl(context, max_call_secs=max_secs)
    pipeline = Pipeline(
        [transport.input(), stt, pair.user(), brain, control, tts, transport.output(), pair.assistant()]
    )
    task = PipelineTask(pipeline)
    await task.queue_frame(TTSSpeakFrame(text=GREETING))
    try:
        await PipelineRunner(handle_sigint=False, handle_sigterm=False).run(task)
    finally:
        directory = os.environ.get(RESULTS_DIR_ENV)
        if directory:
            greeting, turns = conversation_turns(context.get_messages(), list(transport.stats.turns))
            results = CallResults(
                call_id=call.call_id or "unknown",
                brain=brain_name,
                turn_taking=turns_name,
                stt=f"{stt.metrics.model} (faster-whisper, beam {stt.beam_size})",
                tts=f"{tts.metrics.model} ({tts.sample_rate} Hz)",
                greeting=greeting,
                turns=turns,
                ended_by=control.ended_by,
            )
            path = await write_results(directory, results)
            logger.info("- demo: results written to %s", path)
