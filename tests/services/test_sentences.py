"""The streaming sentence/clause splitter: boundaries, and nothing lost however the text arrives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from phonewire.services.sentences import SentenceSplitter, split_sentences


def stream(text: str, cuts: list[int], **options: object) -> list[str]:
    splitter = SentenceSplitter(**options)  # type: ignore[arg-type]
    pieces: list[str] = []
    last = 0
    for cut in sorted(set(cuts)):
        pieces += splitter.push(text[last:cut])
        last = cut
    pieces += splitter.push(text[last:])
    rest = splitter.flush()
    return pieces + ([rest] if rest is not None else [])


def test_sentences_and_a_first_clause() -> None:
    pieces = split_sentences("Hello there, how are you today? I am fine.")
    assert pieces == ["Hello there, how are you today?", " I am fine."]
    assert split_sentences("Well, let me check that for you, it might take a moment. Done.") == [
        "Well, let me check that for you,", " it might take a moment.", " Done."
    ]


def test_only_the_first_piece_ends_at_a_clause() -> None:
    text = "Sure, I can help with that, of course. Then we go on, and on, and on."
    assert split_sentences(text) == ["Sure, I can help with that,", " of course.", " Then we go on, and on, and on."]


def test_abbreviations_numbers_and_initials_do_not_end_sentences() -> None:
    text = "Dr. Smith paid $3.50 for 1,000 items, e.g. pens. J. R. R. Tolkien agreed. Mrs. Jones too."
    assert split_sentences(text, first_clause=False) == [
        "Dr. Smith paid $3.50 for 1,000 items, e.g. pens.", " J. R. R. Tolkien agreed.", " Mrs. Jones too."
    ]


def test_list_lines_and_other_terminators() -> None:
    pieces = split_sentences("Options:\n1. First item\n2. Second item")
    assert pieces == ["Options:", "\n1. First item", "\n2. Second item"]
    assert split_sentences('Really?! "Yes." Wow… ok') == ["Really?!", ' "Yes."', " Wow…", " ok"]


def test_a_boundary_waits_for_the_next_character() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("It costs 3.") == []  # could be 3.5
    assert splitter.push("5 dollars. Next") == ["It costs 3.5 dollars."]
    assert splitter.flush() == " Next"


def test_long_sentences_fall_back_to_clauses_and_unpunctuated_text_is_bounded() -> None:
    long = "This sentence " + "goes on and on " * 12 + "and then, finally, it ends here."
    pieces = split_sentences("Hi. " + long, long_sentence_chars=80)
    assert len(pieces) > 2 and "".join(pieces) == "Hi. " + long
    words = "word " * 500
    splitter = SentenceSplitter(max_piece_chars=100)
    out = splitter.push(words)
    assert out and all(len(p) <= 101 for p in out)


TEXT = st.text(alphabet=st.sampled_from(list("abc ABC.,;:!?-—…'\"\n0123456789")), max_size=200)


@given(TEXT, st.lists(st.integers(min_value=0, max_value=200), max_size=20))
def test_pieces_joined_are_the_input_however_it_streams(text: str, cuts: list[int]) -> None:
    pieces = stream(text, cuts)
    assert "".join(pieces) == text
    assert all(pieces)


@given(TEXT, st.lists(st.integers(min_value=0, max_value=200), max_size=20))
def test_streaming_agrees_with_the_whole_text_at_sentence_ends(text: str, cuts: list[int]) -> None:
    """Chunking may only move a boundary that depends on text not yet seen: never add words."""
    streamed = [p for p in stream(text, cuts, first_clause=False) if p.strip()]
    whole = split_sentences(text, first_clause=False)
    assert "".join(streamed) == "".join(whole)
