"""clause_hint: the transcript's second opinion on whether a turn is finished."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonewire.turns import ClauseHint, clause_hint

C, INC, N = ClauseHint.COMPLETE, ClauseHint.INCOMPLETE, ClauseHint.NEUTRAL


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("What time do you close today?", C),
        ("I would like to cancel my order.", C),
        ("My number is 555,", INC),
        ("The order number is 42", INC),
        ("I want to, um,", INC),
        ("I want to um", INC),
        ("Can you send it to", INC),
        ("Can you send it to.", INC),  # Whisper's full stop after a fragment
        ("My appointment is on the", INC),
        ("I need milk, eggs, and", INC),
        ("Let me think...", INC),
        ("yes please", N),
        ("", N),
        ("   ", N),
    ],
)
def test_examples(text: str, hint: ClauseHint) -> None:
    assert clause_hint(text) is hint


@given(st.text())
def test_any_text_gives_a_hint_without_raising(text: str) -> None:
    assert clause_hint(text) in (C, INC, N)


@given(st.text(alphabet=st.characters(categories=("L", "N", "Zs", "P")), max_size=60))
def test_a_trailing_conjunction_or_comma_is_always_unfinished(text: str) -> None:
    assert clause_hint(text + " and") is INC
    assert clause_hint(text + " word,") is INC
