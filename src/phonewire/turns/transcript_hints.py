"""Does the transcript so far read like a finished sentence? A cheap second opinion.

Smart Turn hears prosody; the words add what it cannot: a turn that ends in "and", "to the",
"um" or a comma is not finished however final the voice sounds, and a recogniser's full stop or
question mark is evidence (weaker: Whisper punctuates fragments too) that it is. The rules are
deliberately few and only look at the end of the text:

* INCOMPLETE: ends in ``, ; : - — …`` or ``...``; or its last word is a filler ("um", "uh",
  …), a conjunction, preposition, article or possessive ("and", "to", "the", "my", …), with or
  without a stop after it (Whisper writes "Can you send it to."); or it ends in a group of
  digits or number words without a stop ("my number is 555", "four two") - numbers are read in
  groups with pauses between them.
* COMPLETE: ends in ``. ? !`` otherwise.
* NEUTRAL: anything else (no punctuation, no tell-tale word), and the empty text.
"""

from __future__ import annotations

import re
from enum import Enum

__all__ = ["ClauseHint", "clause_hint"]


class ClauseHint(Enum):
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    NEUTRAL = "neutral"


FILLERS = frozenset({"um", "umm", "uh", "uhh", "uhm", "er", "erm", "hmm", "mm", "ah", "eh"})
#: Words a finished English sentence (almost) never ends with.
DANGLING = frozenset(
    "and or but so because if that than then to of for with from at on in into by about as like "
    "the a an my your our their his her its this these those is are was were am be "
    "i i'm we you they he she it's there's that's what's here's he's she's who's "
    "we're you're they're".split()
)
NUMBER_WORDS = frozenset("zero oh one two three four five six seven eight nine ten eleven twelve double triple".split())
_OPEN_END = ("...", "…", ",", ";", ":", "-", "—", "–")
_WORD = re.compile(r"[\w']+", re.UNICODE)


def clause_hint(text: str) -> ClauseHint:
    """The hint for a turn's text so far (never raises; any string is accepted)."""
    stripped = text.strip().strip("\"'”’)")
    if not stripped:
        return ClauseHint.NEUTRAL
    if stripped.endswith(_OPEN_END):
        return ClauseHint.INCOMPLETE
    words = _WORD.findall(stripped.lower())
    if not words:
        return ClauseHint.COMPLETE if stripped[-1] in ".?!" else ClauseHint.NEUTRAL
    last = words[-1]
    if last in FILLERS or last in DANGLING:
        return ClauseHint.INCOMPLETE
    if stripped[-1] in ".?!":
        return ClauseHint.COMPLETE
    if last.isdigit() or last in NUMBER_WORDS:
        return ClauseHint.INCOMPLETE
    return ClauseHint.NEUTRAL
