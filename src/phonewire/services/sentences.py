"""Sentence and clause splitting for LLM text as it streams (sans-I/O).

Why a splitter of our own: a TTS request per sentence is what makes a streamed reply audible
before the LLM has finished, and the *first* request decides how long the caller waits. So
the first piece of a reply may end at a clause (a comma, colon, semicolon or dash after
``min_clause_words`` words); later pieces end at sentences, and only fall back to a clause
when a sentence runs past ``long_sentence_chars``. A boundary is only taken once the
character after it has arrived (it must be whitespace), which is what keeps "3.5" and
"1,000" whole; "Dr." / "e.g." / single initials are not sentence ends.

Invariant (property-tested): the pieces ``push`` and ``flush`` return, joined, are exactly
the text pushed. Whitespace after a boundary starts the next piece; callers strip pieces.
"""

from __future__ import annotations

import re

__all__ = ["ABBREVIATIONS", "SentenceSplitter", "split_sentences"]

#: Words that end in a full stop without ending a sentence (compared lower-cased, no dot).
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt vs etc e.g i.e eg ie a.m p.m am pm no nos inc ltd co corp"
    " dept est approx apt fig jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k".split()
)

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|\n")
_CLAUSE_END = re.compile(r"(?:[,;:]|\s[-–—]|—)(?=\s)")
_WORD = re.compile(r"\S+")
_TOKEN_BEFORE = re.compile(r"([\w.]+)\.+$")

#: A piece is forced out at the last space once the buffer holds this many characters, so a
#: reply with no punctuation at all still streams and the buffer stays bounded.
MAX_PIECE_CHARS = 1000


class SentenceSplitter:
    """Feed text with ``push``; get back the pieces that are complete. ``flush`` at the end.

    ``first_clause`` lets the first piece after construction or ``reset`` end at a clause.
    """

    def __init__(
        self,
        *,
        min_clause_words: int = 4,
        first_clause: bool = True,
        long_sentence_chars: int = 160,
        max_piece_chars: int = MAX_PIECE_CHARS,
    ) -> None:
        self.min_clause_words = min_clause_words
        self.first_clause = first_clause
        self.long_sentence_chars = long_sentence_chars
        self.max_piece_chars = max_piece_chars
        self._buffer = ""
        self._emitted = 0

    def reset(self) -> None:
        """Forget buffered text (an interruption, a new reply)."""
        self._buffer = ""
        self._emitted = 0

    @property
    def pending(self) -> str:
        return self._buffer

    def push(self, text: str) -> list[str]:
        self._buffer += text
        pieces: list[str] = []
        while (cut := self._next_cut()) is not None:
            pieces.append(self._buffer[:cut])
            self._buffer = self._buffer[cut:]
            self._emitted += 1
        return pieces

    def flush(self) -> str | None:
        """The rest of the text (None if nothing but whitespace is left, which is returned too
        so that joined pieces still equal the input: callers skip blank pieces)."""
        rest, self._buffer = self._buffer, ""
        if rest:
            self._emitted += 1
        return rest or None

    # --- boundaries ----------------------------------------------------------------------

    def _next_cut(self) -> int | None:
        buf = self._buffer
        start = len(buf) - len(buf.lstrip())  # leading whitespace belongs to this piece
        cuts = [c for c in (self._sentence_cut(buf, start), self._clause_cut(buf, start)) if c is not None]
        if cuts:
            return min(cuts)
        if len(buf) - start >= self.max_piece_chars:
            limit = start + self.max_piece_chars
            space = buf.rfind(" ", start + 1, limit)
            return space if space > start else limit
        return None

    def _sentence_cut(self, buf: str, start: int) -> int | None:
        for match in _SENTENCE_END.finditer(buf, start):
            if match.group() == "\n":
                if buf[start : match.start()].strip():
                    return match.start()
                continue
            if not self._is_false_end(buf, start, match.start()):
                return match.end()
        return None

    def _clause_cut(self, buf: str, start: int) -> int | None:
        if not self._clauses_allowed(buf, start):
            return None
        for match in _CLAUSE_END.finditer(buf, start):
            if len(_WORD.findall(buf[start : match.start()])) >= self.min_clause_words:
                return match.end()
        return None

    def _clauses_allowed(self, buf: str, start: int) -> bool:
        if self.first_clause and self._emitted == 0:
            return True
        return len(buf) - start >= self.long_sentence_chars

    @staticmethod
    def _is_false_end(buf: str, start: int, end: int) -> bool:
        """A full stop after an abbreviation, an initial or a list number is not an end."""
        if buf[end] != ".":
            return False
        word_start = max(buf.rfind(" ", start, end), buf.rfind("\n", start, end)) + 1
        token = buf[max(word_start, start) : end + 1]
        found = _TOKEN_BEFORE.search(token)
        if found is None:
            return False
        word = found.group(1)
        if word.lower() in ABBREVIATIONS:
            return True
        if len(word) == 1 and word.isalpha() and word.isupper():
            return True  # an initial: "J. Smith"
        if word.isdigit() and len(word) <= 2 and not buf[start : max(word_start, start)].strip():
            return True  # a list marker at the start of a piece: "1. First"
        return False


def split_sentences(text: str, **options: int | bool) -> list[str]:
    """Split a whole text at once (what ``push`` then ``flush`` would give), blanks dropped."""
    splitter = SentenceSplitter(**options)  # type: ignore[arg-type]
    pieces = splitter.push(text)
    rest = splitter.flush()
    if rest is not None:
        pieces.append(rest)
    return [p for p in pieces if p.strip()]
