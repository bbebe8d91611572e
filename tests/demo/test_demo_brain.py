"""The demo's brain and bookkeeping, without models: the rules, the choice of brain, the report."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from phonewire.demo.brain import BAKERY_RULES, FALLBACK, RulesLLMService, match_rule, says_goodbye
from phonewire.demo.conversation import make_brain
from phonewire.demo.results import CallResults, conversation_turns, read_results, render_results, write_results
from phonewire.frames import LLMContextFrame, LLMFullResponseEndFrame, LLMFullResponseStartFrame, LLMTextFrame
from phonewire.processors.aggregators import LLMContext
from services.speech_harness import running


@pytest.mark.parametrize(
    ("heard", "rule"),
    [
        ("What are your opening hours?", "hours"),
        ("When do you close?", "hours"),
        ("Do you deliver on Sundays?", "delivery"),
        ("How much is the loaf of bread?", "prices"),
        ("Thanks. Goodbye.", "goodbye"),
        ("Thanks, bye!", "goodbye"),
        ("Can I speak to a person?", None),
    ],
)
def test_rules_match_whisper_style_transcripts(heard: str, rule: str | None) -> None:
    found = match_rule(heard)
    assert (found.name if found else None) == rule


def test_goodbye_is_a_whole_word_stem_not_any_substring() -> None:
    assert says_goodbye("Okay, bye then") and not says_goodbye("I'd like to buy a cake")


def test_the_rules_brain_streams_its_fixed_answer_like_an_llm() -> None:
    async def main() -> tuple[list[object], RulesLLMService]:
        brain = RulesLLMService()
        context = LLMContext([{"role": "user", "content": "Do you deliver on Sundays?"}])
        async with running(brain) as h:
            await h.push(LLMContextFrame(context=context))
            await h.downstream.wait_for_type(LLMFullResponseEndFrame)
            return list(h.downstream.frames), brain

    frames, brain = asyncio.run(main())
    kinds = [type(f) for f in frames if isinstance(f, LLMFullResponseStartFrame | LLMFullResponseEndFrame)]
    assert kinds == [LLMFullResponseStartFrame, LLMFullResponseEndFrame]
    text = "".join(f.text for f in frames if isinstance(f, LLMTextFrame))
    delivery = next(r for r in BAKERY_RULES if r.name == "delivery")
    assert text == delivery.answer and len([f for f in frames if isinstance(f, LLMTextFrame)]) > 5
    assert brain.answers == [("Do you deliver on Sundays?", "delivery", delivery.answer)]
    assert match_rule("nothing to see") is None and FALLBACK


def test_the_brain_is_the_rules_unless_an_openai_compatible_server_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "PHONEWIRE_DEMO_BRAIN"):
        monkeypatch.delenv(name, raising=False)
    brain, description = make_brain()
    assert isinstance(brain, RulesLLMService) and description.startswith("keyword rules")

    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # never contacted: nothing runs
    monkeypatch.setenv("OPENAI_MODEL", "llama3.2")
    brain, description = make_brain()
    assert type(brain).__name__ == "OpenAILLMService" and "llama3.2" in description
    assert isinstance(make_brain("rules")[0], RulesLLMService)
    with pytest.raises(ValueError):
        make_brain("oracle")


def test_turns_pair_each_caller_message_with_the_reply_as_heard_and_its_stages(tmp_path: object) -> None:
    messages = [
        {"role": "system", "content": "facts"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Do you deliver?"},
        {"role": "assistant", "content": "Yes, we deliver on Sundays —"},
        {"role": "user", "content": "How much is bread?"},
        {"role": "assistant", "content": "Four dollars."},
    ]
    records = [SimpleNamespace(stages={"vad_stop": 0.8, "first_audio_heard": 1.51234}) for _ in range(2)]
    greeting, turns = conversation_turns(messages, records)
    assert greeting == "Hello."
    assert [(t.caller, t.bot, t.interrupted) for t in turns] == [
        ("Do you deliver?", "Yes, we deliver on Sundays", True),
        ("How much is bread?", "Four dollars.", False),
    ]
    assert turns[1].stages == {"vad_stop": 0.8, "first_audio_heard": 1.5123}

    results = CallResults("CA/../x", "rules", "whisper", "piper", greeting=greeting, turns=turns, ended_by="goodbye")

    async def roundtrip() -> dict[str, object] | None:
        await write_results(str(tmp_path), results)
        return await read_results(str(tmp_path), "CA/../x", timeout_secs=1)

    data = asyncio.run(roundtrip())
    assert data is not None and data["call_id"] == "CA/../x"
    text = render_results(data)
    assert "caller: Do you deliver?" in text and "[interrupted by the caller]" in text
    assert "vad_stop 800, first_audio_heard 1512 ms" in text and "ended by    goodbye" in text
    assert asyncio.run(read_results(str(tmp_path), "missing", timeout_secs=0.1)) is None
