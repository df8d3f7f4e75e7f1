"""How long a question says something lasted: 「5か月で解約」, 「半年もたたずに」, 「3年目」, 「1年半」.

Some entries are told apart by a fact rather than a word: cancelling a tool within its first
year or after it (IT導入補助金2020 FAQ 質問6 and 質問7).  Their wordings say 「1年未満」 and
「1年以上」; a person says 「10か月」 or 「2年目」.  `stated_months` reads the span of months a
question states, so that an entry's condition (`Entry.months`) can be compared with it.

A span is [low, high) in months: 「5か月」 is [5, 5], 「1年未満」 [0, 12), 「3年目」 [24, 36),
「1年以上」 [12, inf); a span negated is one not yet reached: 「まだ1年たってない」 is [0, 12).
A year with four digits, an era year or a fiscal year (2023年, 令和2年, 令和2年度), and a month
without a counter (4月), are dates, not durations.  A question stating two different spans states
none.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

_KANJI = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUMBER = r"(\d{1,3}|[一二三四五六七八九十]{1,3}|数)"
# The counter is required: 「4月」 alone is April.
_MONTH = r"(?:か|ヶ|ケ|カ|箇|ヵ)月"
# Said after the span: shorter than it, or at least it.
# A span that has passed, negated, is one not yet reached: 「まだ1年たってない」, 「1年経過していない」,
# 「半年も経ってへん」, 「1年になってない」 are all under it.  Tried before _ABOVE, whose 「たって」
# and 「経過」 would otherwise read the start of 「たってない」 as the span reached.
_PASSED = r"(?:たって|経って|過ぎて|すぎて|経過して|いって|になって|にもなって)"
_NOT = r"(?:い)?(?:な[いくかけ]|ません|ねえ|へん)"
_BELOW = (
    r"未満|以内|足らず|たたず|経たず|たたない|経たない|いかない|弱|に満たない|満たない"
    rf"|に(?:も)?(?:ならない|ならず|届かない)|{_PASSED}{_NOT}"
)
_ABOVE = r"以上|超|過ぎ|すぎ|経過|たって|経って|経った|たった|が過ぎ"
# 「しか」 with a negation is "only": 「8か月しか経ってない」 says eight months, not under eight.
_PARTICLES = r"(?:も|しか|ほど|くらい|ぐらい|ちょっと|程度)"
_SPAN = re.compile(
    rf"(?<![\d年])(?<!令和)(?<!平成)(?<!昭和)(?:{_NUMBER}年半|半年|{_NUMBER}年目|{_NUMBER}年(?!度|\d)|{_NUMBER}{_MONTH}(?!\d))"
    rf"(?:間)?(?:\s*({_PARTICLES}{{0,2}})\s*({_BELOW}|{_ABOVE}))?"
)
_BELOW_RE = re.compile(_BELOW)
# 以内 includes its end (「1年以内」 is up to and with one year): a hair past it, so that it
# straddles a one-year edge and decides nothing, where 未満 stops short of it.
_UP_TO = 1e-9


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
    """一 to 九十九 in digits or kanji (十, 十二, 二十, 二十四); None for 数 (a few)."""
    if text.isdigit():
        return float(text)
    tens, ten, ones = text.partition("十")
    if not ten:
        return float(_KANJI[text]) if len(text) == 1 and text in _KANJI else None
    if (tens and tens not in _KANJI) or (ones and ones not in _KANJI):
        return None
    return float((_KANJI[tens] if tens else 1) * 10 + (_KANJI[ones] if ones else 0))


def _span(match: re.Match[str]) -> Span | None:
    text = match.group(0)
    half_years, year_th, years, months, particles, bound = match.groups()
    if text.startswith("半年"):
        point = 6.0
    else:
        n = _count(half_years or year_th or years or months or "")
        if n is None:  # 数か月 is a few months, under a year; 数年 says nothing exact
            return Span(1.0, 12.0) if months == "数" else None
        if year_th is not None:  # during the n-th year
            return Span((n - 1) * 12, n * 12) if n >= 1 else None
        point = n * 12 + 6 if half_years else n * 12 if years else n
    below = bound is not None and _BELOW_RE.fullmatch(bound) is not None
    if bound is None or (below and "しか" in particles):
        return Span(point, point)
    if below:
        return Span(0.0, point + (_UP_TO if bound == "以内" else 0.0))
    return Span(point, math.inf)


def stated_months(text: str) -> Span | None:
    """The span of months `text` states, or None when it states none (or two that differ)."""
    text = unicodedata.normalize("NFKC", text)
    spans = {s for m in _SPAN.finditer(text) if (s := _span(m)) is not None}
    return spans.pop() if len(spans) == 1 else None
