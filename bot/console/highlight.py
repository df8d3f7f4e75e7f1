"""Mark the words a search matched inside a text, escaping everything else.

The matcher reports the query terms an entry contains in normalised form (NFKC, lower
case; 「ＩＤ」 is reported as "id").  They are found in a folded copy of the text that
has exactly one character per original character, so the spans are cut out of the
original text as written.  Every piece, marked or not, is HTML-escaped; the result is
safe to insert into a page.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from markupsafe import Markup, escape

from faq.text import READING_MARK

MIN_TERM = 2  # single characters (性, 日) would light up half of any answer


def _fold(text: str) -> str:
    out = []
    for ch in text:
        folded = unicodedata.normalize("NFKC", ch).lower()
        out.append(folded if len(folded) == 1 else ch)
    return "".join(out)


def highlight_terms(terms: Iterable[str]) -> tuple[str, ...]:
    """The terms worth marking: no readings, no single characters, longest first."""
    kept = {
        _fold(unicodedata.normalize("NFKC", t))
        for t in terms
        if not t.startswith(READING_MARK) and len(t.strip()) >= MIN_TERM
    }
    return tuple(sorted(kept, key=lambda t: (-len(t), t)))


def spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """Non-overlapping [start, end) spans of the terms in `text`, longest term first."""
    folded = _fold(text)
    taken = [False] * len(text)
    found: list[tuple[int, int]] = []
    for term in highlight_terms(terms):
        start = folded.find(term)
        while start != -1:
            end = start + len(term)
            if not any(taken[start:end]):
                found.append((start, end))
                for i in range(start, end):
                    taken[i] = True
            start = folded.find(term, end)
    return sorted(found)


def highlight(text: str, terms: Iterable[str]) -> Markup:
    """`text` escaped, with each matched term wrapped in <mark>."""
    parts: list[str] = []
    pos = 0
    for start, end in spans(text, terms):
        parts.append(str(escape(text[pos:start])))
        parts.append(f"<mark>{escape(text[start:end])}</mark>")
        pos = end
    parts.append(str(escape(text[pos:])))
    return Markup("".join(parts))
