"""How long a question says something lasted: 「5か月で解約」, 「半年もたたずに」, 「3年目」, 「1年半」.

Some entries are told apart by a fact rather than a word: cancelling a tool within its first
year or after it (IT導入補助金2020 FAQ 質問6 and 質問7).  Their wordings say 「1年未満」 and
「1年以上」; a person says 「10か月」 or 「2年目」.  `stated_months` reads the span of months a
question states, so that an entry's condition (`Entry.months`) can be compared with it.

A span is [low, high) in months: 「5か月」 is [5, 5], 「1年未満」 [0, 12), 「3年目」 [24, 36),
「1年以上」 [12, inf).  A year with four digits, an era year or a fiscal year (2023年, 令和2年,
令和2年度), and a month without a counter (4月), are dates, not durations.  A question stating two different spans states none.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

_KANJI = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_NUMBER = r"(\d{1,3}|[一二三四五六七八九十]{1,3}|数)"
# The counter is required: 「4月」 alone is April.
_MONTH = r"(?:か|ヶ|ケ|カ|箇|ヵ|ケ)月"
# Said after the span: shorter than it, or at least it.
_BELOW = r"未満|以内|足らず|たたず|経たず|もたたず|もたたない|たっていない|経っていない|いかない|弱"
_ABOVE = r"以上|超|過ぎ|すぎ|経過|たって|経って|経った|たった|が過ぎ"
_SPAN = re.compile(
    rf"(?<![\d年])(?<!令和)(?<!平成)(?<!昭和)(?:{_NUMBER}年半|半年|{_NUMBER}年目|{_NUMBER}年(?!度|\d)|{_NUMBER}{_MONTH}(?!\d))"
    rf"(?:間)?(?:\s*(?:も|しか|ほど|くらい|ぐらい|ちょっと|程度)?\s*({_BELOW}|{_ABOVE}))?"
)
_BELOW_RE = re.compile(_BELOW)


@dataclass(frozen=True)
class Span:
    """Months from `low` (inclusive) to `high` (exclusive; a point when equal to `low`)."""

    low: float
    high: float

    def fits(self, low: float | None, below: float | None) -> bool | None:
        """Whether the span lies in [low, below): True inside, False outside, None when it cannot
        tell (it straddles an edge, or is a bare point on one: 「1年で解約」 for a one-year rule,
        which people say for "about a year")."""
        lo = 0.0 if low is None else low
        hi = math.inf if below is None else below
        if self.low == self.high:
            if self.low in (lo, hi):
                return None
            return lo < self.low < hi
        if lo <= self.low and self.high <= hi:
            return True
        if self.high <= lo or hi <= self.low:
            return False
        return None


def _count(text: str) -> float | None:
    if text == "数":
        return None
    if text.isdigit():
        return float(text)
    if text == "十":
        return 10.0
    if text.startswith("十"):  # 十二
        return 10.0 + _KANJI.get(text[1:], 0)
    if text.endswith("十"):  # 二十
        return _KANJI.get(text[:-1], 0) * 10.0
    if len(text) == 2 and text[1] != "十":
        return None
    if len(text) == 3 and text[1] == "十":  # 二十四
        return _KANJI[text[0]] * 10.0 + _KANJI[text[2]]
    return float(_KANJI[text]) if text in _KANJI else None


def _span(match: re.Match[str]) -> Span | None:
    text = match.group(0)
    half_years, year_th, years, months, bound = match.groups()
    if text.startswith("半年"):
        point = 6.0
    elif half_years is not None:
        n = _count(half_years)
        if n is None:
            return None
        point = n * 12 + 6
    elif year_th is not None:
        n = _count(year_th)
        if n is None or n < 1:
            return None
        return Span((n - 1) * 12, n * 12)  # during the n-th year
    elif years is not None:
        n = _count(years)
        if n is None:
            return None
        point = n * 12
    else:
        n = _count(months) if months is not None else None
        if n is None:  # 数か月: a few months, under a year
            return Span(1.0, 12.0)
        point = n
    if bound is None:
        return Span(point, point)
    if _BELOW_RE.fullmatch(bound):
        return Span(0.0, point + (1e-9 if bound == "以内" else 0.0))
    return Span(point, math.inf)


def stated_months(text: str) -> Span | None:
    """The span of months `text` states, or None when it states none (or two that differ)."""
    text = unicodedata.normalize("NFKC", text)
    spans = {s for m in _SPAN.finditer(text) if (s := _span(m)) is not None}
    return spans.pop() if len(spans) == 1 else None
