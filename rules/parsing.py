"""Read numbers, dates and answers the way applicants type them, and write them back.

People copy figures from a 決算書 (「▲500万」「1,234千円」), type full-width digits,
kanji numerals and era dates (「令和3年4月1日」「R3.4.1」).  Every parser returns a
typed value or raises ParseError whose message says what was understood and what
is expected, so a dialog can re-prompt with it as is; nothing else escapes, whatever
the text.  Each formatter writes a value in a form its parser reads back unchanged.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, Inexact, InvalidOperation, localcontext
from typing import Literal

import japanera  # type: ignore[import-untyped]  # no type information shipped
import kanjize

ReportYear = Literal[1, 2]

AMOUNT_EXAMPLE = "金額を数字で入力してください（例：1,200万円）"
COUNT_EXAMPLE = "人数を数字で入力してください（例：10人）"
HOURS_EXAMPLE = "年間平均労働時間を数字で入力してください（例：1,800時間）"
YEAR_EXAMPLE = "1 または 2 を入力してください（1年度目・2年度目）"
DATE_FORMS = "（例：2021/4/1、令和3年4月1日）"
DATE_EXAMPLE = f"日付を入力してください{DATE_FORMS}"
YES_NO_EXAMPLE = "「はい」か「いいえ」でお答えください"
PRODUCTIVITY_EXAMPLE = "労働生産性を数字で入力してください（例：3,055.56）"

MAX_TEXT = 64  # longer input is not a number anyone types; also bounds the work per call
MAX_AMOUNT = Decimal(10) ** 16  # 1京円: beyond any 決算書 figure
MAX_COUNT = 10_000_000
MAX_HOURS = Decimal(366 * 24)  # a year has at most 8,784 hours
MIN_YEAR, MAX_YEAR = 1900, 2100


class ParseError(ValueError):
    """The text cannot be read as the value asked for.

    `message` is a complete Japanese re-prompt (what was understood, what is
    expected); `understood` is the part that was read, or None when nothing was.
    """

    def __init__(self, message: str, understood: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.understood = understood


# ---------------------------------------------------------------- normalising

_MINUS = "-‐‑‒–—―−ー－"
_PUNCT_TAIL = re.compile(r"[。．.、，,！!？?\s]+$")
_POLITE_TAIL = re.compile(r"(?:です|でした|になります|ぐらいです|くらいです)$")


def _prepare(text: str) -> str:
    """NFKC (full width → ASCII), no spaces, no trailing punctuation or です."""
    s = unicodedata.normalize("NFKC", text)
    s = "".join(ch for ch in s if not ch.isspace() and unicodedata.category(ch)[0] != "C")
    for _ in range(2):
        s = _PUNCT_TAIL.sub("", s)
        s = _POLITE_TAIL.sub("", s)
    return s


def _shown(text: str) -> str:
    """The user's text, trimmed for quoting back in a message."""
    s = "".join(ch for ch in text.strip() if unicodedata.category(ch)[0] != "C")
    return s if len(s) <= 20 else s[:20] + "…"


def _not_read(text: str, what: str, expected: str, hint: str = "") -> ParseError:
    shown = _shown(text)
    if not shown:
        return ParseError(f"{what}が入力されていません。{expected}")
    because = f"（{hint}）" if hint else ""
    return ParseError(f"「{shown}」を{what}として読み取れませんでした{because}。{expected}")


def _too_long(text: str, expected: str) -> ParseError | None:
    if len(text.strip()) > MAX_TEXT:
        return ParseError(f"入力が長すぎます（{MAX_TEXT}文字まで）。{expected}")
    return None


# ---------------------------------------------------------------- numbers

_BIG = re.compile(
    r"^(?:(?P<cho>[^兆億万]+)兆)?(?:(?P<oku>[^兆億万]+)億)?(?:(?P<man>[^兆億万]+)万)?(?P<one>[^兆億万]+)?$"
)
_BIG_POWER = {"cho": 12, "oku": 8, "man": 4, "one": 0}
_ARABIC = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")
_COEFF_SMALL = re.compile(r"^((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)([十百千])$")
_SMALL_POWER = {"十": 1, "百": 2, "千": 3}
_KANJI_NUM = re.compile(r"^[0-9〇零一二三四五六七八九十百千壱弐参拾]+$")


class _Unreadable(Exception):
    """Internal: the number body is not a number; carries a hint for the message."""

    def __init__(self, hint: str = "") -> None:
        super().__init__(hint)
        self.hint = hint


def _small(section: str) -> Decimal:
    """One section below a 万/億/兆 unit: 1,234 / 1.5 / 3百 / 1.2千 / 三百 / 千二百."""
    if _ARABIC.match(section):
        return Decimal(section.replace(",", ""))
    if "," in section and re.fullmatch(r"[\d,]+(?:\.\d+)?", section):
        raise _Unreadable("桁区切りのカンマの位置が正しくありません")
    coeff = _COEFF_SMALL.match(section)
    if coeff:
        return Decimal(coeff.group(1).replace(",", "")).scaleb(_SMALL_POWER[coeff.group(2)])
    if _KANJI_NUM.match(section):
        try:
            return Decimal(kanjize.kanji2number(section))
        except Exception:  # kanjize raises plain ValueErrors and worse on odd input
            raise _Unreadable() from None
    raise _Unreadable()


def _number(body: str) -> Decimal:
    """A number written with digits, kanji numerals and 万/億/兆, exactly, as Decimal."""
    found = _BIG.match(body)
    if not body or not found:
        raise _Unreadable()
    value = Decimal(0)
    leading = True
    for name, power in _BIG_POWER.items():
        section = found.group(name)
        if section is None:
            continue
        part = _small(section)
        if not leading and part >= 10_000:
            raise _Unreadable(f"「{section}」は上の単位との間で桁が合いません")
        leading = False
        value += part.scaleb(power)
    if leading:
        raise _Unreadable()
    return value


_APPROX_HEAD = ("およそ", "おおよそ", "だいたい", "大体", "概ね", "おおむね", "ざっと", "約")
_APPROX_TAIL = ("ぐらい", "くらい", "程度", "前後", "ほど", "位")
_NEG_HEAD = ("マイナス", "▲", "△", "▼", *_MINUS)
_POS_HEAD = ("プラス", "+")


@dataclass(frozen=True)
class _Signed:
    body: str
    negative: bool
    approximate: bool


def _strip_marks(s: str, tails: tuple[str, ...] = ()) -> _Signed:
    """Peel 約 / ▲ / マイナス / ¥ off the front and units and 程度 off the end."""
    negative = approximate = False
    signs = 0
    changed = True
    while changed and s:
        changed = False
        for head in _APPROX_HEAD:
            if s.startswith(head):
                s, approximate, changed = s[len(head) :], True, True
        for head in _NEG_HEAD:
            if s.startswith(head):
                s, negative, changed = s[len(head) :], True, True
                signs += 1
        for head in (*_POS_HEAD, "¥", "\\"):
            if s.startswith(head):
                s, changed = s[len(head) :], True
                signs += head in _POS_HEAD
    changed = True
    while changed and s:
        changed = False
        for tail in (*_APPROX_TAIL, *tails):
            if s.endswith(tail) and len(s) > len(tail):
                s, changed = s[: -len(tail)], True
                approximate = approximate or tail in _APPROX_TAIL
    if signs > 1:
        raise _Unreadable("符号（▲・マイナスなど）が重なっています")
    return _Signed(s, negative, approximate)


def _read_signed(text: str, tails: tuple[str, ...]) -> tuple[Decimal, _Signed]:
    marks = _strip_marks(_prepare(text), tails)
    with localcontext() as ctx:
        ctx.prec = 40
        ctx.traps[Inexact] = True
        try:
            value = _number(marks.body)
        except (Inexact, InvalidOperation):
            raise _Unreadable("桁が多すぎます") from None
    return (value.copy_negate() if marks.negative else value), marks


@dataclass(frozen=True)
class AmountReading:
    """An amount in yen as read, and whether it was given as an estimate (約3億)."""

    value: Decimal
    approximate: bool = False

    @property
    def note(self) -> str | None:
        if not self.approximate:
            return None
        return (
            f"「約」の付いた概数として{format_money(self.value)}で受け付けました。"
            "報告には決算書の正確な数値を使ってください。"
        )


_LOSS = re.compile(r"^(?:赤字|損失)(?:で|が|は|の)?(?P<a>.+)$|^(?P<b>.+?)(?:の)?(?:赤字|損失)$")
_PROFIT = re.compile(r"^(?:黒字|利益)(?:で|が|は|の)?(?P<a>.+)$|^(?P<b>.+?)(?:の)?黒字$")
_ZERO_WORDS = frozenset({"ゼロ", "ぜろ", "零", "0円", "ゼロ円", "れい"})


def _loss_words(text: str) -> tuple[str, bool]:
    """「赤字500万」「500万の赤字」「赤字で500万」 → ('500万', True); 「黒字で300万」 → ('300万', False)."""
    s = _prepare(text)
    for pattern, negative in ((_LOSS, True), (_PROFIT, False)):
        found = pattern.match(s)
        if found:
            body = found.group("a") or found.group("b") or ""
            if body and body[0] not in "▲△▼-−マ":
                return body, negative
    return text, False


def read_amount(text: str) -> AmountReading:
    """An amount of money in yen: 「1,234万円」「▲500万」「赤字500万」「約3億」「-200000」「ゼロ」."""
    if (err := _too_long(text, AMOUNT_EXAMPLE)) is not None:
        raise err
    if _prepare(text) in _ZERO_WORDS:
        return AmountReading(Decimal(0))
    text, loss = _loss_words(text)
    try:
        value, marks = _read_signed(text, ("円",))
        if loss:
            value = -value
    except _Unreadable as exc:
        raise _not_read(text, "金額", AMOUNT_EXAMPLE, exc.hint) from None
    if value.copy_abs() >= MAX_AMOUNT:
        raise ParseError(
            f"{format_money(value)}は大きすぎます。{AMOUNT_EXAMPLE}",
            format_money(value),
        )
    if value != value.to_integral_value():
        shown = _plain(value) + "円"
        raise ParseError(
            f"{shown}と読み取りましたが、1円未満の端数があります。円単位の整数で入力してください（例：1,200万円）",
            shown,
        )
    return AmountReading(_integral(value), marks.approximate)


def parse_amount(text: str) -> Decimal:
    """The amount in yen as a whole-yen Decimal (see read_amount for the 約 flag)."""
    return read_amount(text).value


def _integral(value: Decimal) -> Decimal:
    return _no_negative_zero(value.quantize(Decimal(1)))


def _no_negative_zero(value: Decimal) -> Decimal:
    # copy_abs, unlike abs() or + 0, never rounds to the context precision.
    return value.copy_abs() if value.is_zero() else value


def _plain(value: Decimal) -> str:
    """1234567.5 → '1,234,567.5' (no exponent, no rounding)."""
    sign = "-" if value < 0 else ""
    text = format(value.copy_abs(), "f")
    whole, _, frac = text.partition(".")
    return f"{sign}{int(whole):,}" + (f".{frac}" if frac else "")


def format_yen(value: Decimal, *, style: Literal["yen", "man"] = "yen") -> str:
    """12345678 → '12,345,678円' or, with style='man', '1,234万5,678円'; negatives as '▲…'.

    Amounts are whole yen: a fractional value raises ValueError (amounts are never
    rounded silently).
    """
    if value != value.to_integral_value():
        raise ValueError(f"not a whole-yen amount: {value}")
    whole = int(value)
    sign = "▲" if whole < 0 else ""
    whole = abs(whole)
    if style == "yen" or whole < 10_000:
        return f"{sign}{whole:,}円"
    parts = []
    for unit, size in (("兆", 10**12), ("億", 10**8), ("万", 10**4)):
        if whole >= size:
            parts.append(f"{whole // size:,}{unit}")
            whole %= size
    if whole:
        parts.append(f"{whole:,}")
    return sign + "".join(parts) + "円"


def format_money(value: Decimal) -> str:
    """The one way an amount is shown to a person, in every channel: 3,000万円, ▲500万円, 1億5,000万円.

    Read-backs, results, the console and error messages all use it, so a figure typed as
    「3000万」 looks the same wherever it comes back.  A fraction of a yen (only ever met in
    a rule's own error message) is shown as it is, never rounded.
    """
    if value == value.to_integral_value():
        return format_yen(value, style="man")
    sign = "▲" if value < 0 else ""
    return f"{sign}{_plain(value.copy_abs())}円"


# ---------------------------------------------------------------- counts and hours

_COUNT_WORDS = {"ひとり": 1, "ふたり": 2, "一人": 1, "二人": 2}


def parse_count(text: str) -> int:
    """A number of people: 「10人」「十人」「3名」「ひとり」.  0 is returned; negatives are not."""
    if (err := _too_long(text, COUNT_EXAMPLE)) is not None:
        raise err
    s = _prepare(text)
    if s in _COUNT_WORDS:
        return _COUNT_WORDS[s]
    try:
        value, _ = _read_signed(text, ("人", "名", "人数"))
    except _Unreadable as exc:
        raise _not_read(text, "人数", COUNT_EXAMPLE, exc.hint) from None
    if value < 0:
        raise ParseError(f"{_plain(value)}人と読み取りましたが、人数はマイナスにできません。{COUNT_EXAMPLE}")
    if value != value.to_integral_value():
        raise ParseError(f"{_plain(value)}人と読み取りましたが、人数は整数で入力してください（例：10人）")
    if value > MAX_COUNT:
        raise ParseError(f"{_plain(value)}人は大きすぎます。{COUNT_EXAMPLE}")
    return int(value)


def format_count(value: int) -> str:
    return f"{value:,}人"


def parse_hours(text: str) -> Decimal:
    """Annual hours: 「1,800時間」「1800h」「年間1,850.5時間」; 0 to 8,784."""
    if (err := _too_long(text, HOURS_EXAMPLE)) is not None:
        raise err
    s = _prepare(text).lower()
    if s.startswith("年間"):
        s = s[2:]
    try:
        value, _ = _read_signed(s, ("時間/年", "時間", "hours", "hour", "hrs", "hr", "h", "/年"))
    except _Unreadable as exc:
        raise _not_read(text, "時間", HOURS_EXAMPLE, exc.hint) from None
    shown = f"{_plain(value)}時間"
    if value < 0:
        raise ParseError(f"{shown}と読み取りましたが、時間はマイナスにできません。{HOURS_EXAMPLE}", shown)
    if value > MAX_HOURS:
        raise ParseError(
            f"{shown}と読み取りましたが、1年は最大{int(MAX_HOURS):,}時間です。{HOURS_EXAMPLE}", shown
        )
    return _no_negative_zero(value)


def format_hours(value: Decimal) -> str:
    return f"{_plain(value)}時間"


def parse_productivity(text: str) -> Decimal:
    """A labour productivity figure (円/時間) as entered at application: 「3,055.56」「▲120円/時間」."""
    if (err := _too_long(text, PRODUCTIVITY_EXAMPLE)) is not None:
        raise err
    try:
        value, _ = _read_signed(_prepare(text).lower(), ("円/時間", "円/h", "円/人時", "円"))
    except _Unreadable as exc:
        raise _not_read(text, "労働生産性", PRODUCTIVITY_EXAMPLE, exc.hint) from None
    if value.copy_abs() >= MAX_AMOUNT:
        raise ParseError(f"{_plain(value)}は大きすぎます。{PRODUCTIVITY_EXAMPLE}")
    return _no_negative_zero(value)


def format_productivity(value: Decimal) -> str:
    """3055.56 → '3,055.56円/時間' (as given: round first for display)."""
    return f"{'▲' if value < 0 else ''}{_plain(value.copy_abs())}円/時間"


# ---------------------------------------------------------------- report year

_YEAR_TEXT = re.compile(r"^第?([12一二])(?:年度目|年目|年度|年|回目|回)?(?:の報告|の効果報告)?$")
_YEAR_WORDS = {
    "初年度": 1,
    "初回": 1,
    "初めて": 1,
    "はじめて": 1,
    "最初": 1,
    "1回目": 1,
    "一回目": 1,
    "2回目": 2,
    "二回目": 2,
    "最後": 2,
    "次年度": 2,
}


def parse_report_year(text: str) -> ReportYear:
    """Which effect report: 「1」「2年度目」「二年目」."""
    if (err := _too_long(text, YEAR_EXAMPLE)) is not None:
        raise err
    prepared = re.sub(r"^(?:今回|今年|今度)(?:が|は|で)?", "", _prepare(text))
    for word, year in _YEAR_WORDS.items():
        if prepared.startswith(word):
            return 1 if year == 1 else 2
    found = _YEAR_TEXT.match(prepared)
    if not found:
        raise _not_read(text, "報告年度", YEAR_EXAMPLE)
    return 1 if found.group(1) in ("1", "一") else 2


def format_report_year(value: ReportYear) -> str:
    return f"{value}年度目"


# ---------------------------------------------------------------- dates

_WEEKDAYS = "月火水木金土日"
_WEEKDAY_TAIL = re.compile(r"\(?[月火水木金土日](?:曜日?)?\)?$")
_NUM = r"(\d{1,4}|[〇一二三四五六七八九十]+)"
_WESTERN_SEP = re.compile(r"^(\d{4})([-/.])(\d{1,2})\2(\d{1,2})$")
_WESTERN_KANJI = re.compile(rf"^{_NUM}年{_NUM}月{_NUM}日?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_ERA = re.compile(
    rf"^(明治|大正|昭和|平成|令和|[MTSHR])(元|{_NUM[1:-1]})(?:年|[-/.])"
    rf"{_NUM}(?:月|[-/.]){_NUM}日?$"
)
_TWO_DIGIT = re.compile(r"^\d{2}[-/.]\d{1,2}[-/.]\d{1,2}$")
_NO_DAY = re.compile(r"^(?:\d{4}|(?:明治|大正|昭和|平成|令和|[MTSHR])(?:元|\d{1,2}))[年/.-]\d{1,2}月?$")
_RELATIVE = {
    "今日": 0, "本日": 0, "きょう": 0, "昨日": -1, "きのう": -1, "一昨日": -2, "おととい": -2,
    "明日": 1, "あした": 1, "明後日": 2, "あさって": 2,
}  # fmt: skip
_MONTH_SHIFT = {"先月": -1, "前月": -1, "今月": 0, "当月": 0, "来月": 1, "翌月": 1}
_YEAR_SHIFT = {
    "去年": -1,
    "昨年": -1,
    "前年": -1,
    "一昨年": -2,
    "おととし": -2,
    "今年": 0,
    "本年": 0,
    "来年": 1,
    "翌年": 1,
}
_REL_MONTH = re.compile(
    r"^(先月|前月|今月|当月|来月|翌月)(?:の)?(?:(末|末日|終わり|月末)|(\d{1,2})日|(初め|初日|頭))$"
)
_REL_YEAR = re.compile(
    r"^(去年|昨年|前年|一昨年|おととし|今年|本年|来年|翌年)(?:の)?(\d{1,2})月(?:(\d{1,2})日|(末|末日))?$"
)
_MONTH_END = re.compile(
    r"^((?:\d{4}|(?:明治|大正|昭和|平成|令和|[MTSHR])(?:元|\d{1,2}))年\d{1,2}月)(?:末|末日|の末日)$"
)
_MONTH_DAY = re.compile(r"^(\d{1,2})月(\d{1,2})日$")


def _month_end(year: int, month: int) -> date:
    return (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)


def _relative_date(s: str, today: date) -> date | None:
    """今日・昨日・先月末・先月15日・去年の4月1日, counted from `today`; None when `s` is none of these."""
    if s in _RELATIVE:
        return today + timedelta(days=_RELATIVE[s])
    if found := _REL_MONTH.match(s):
        index = today.year * 12 + today.month - 1 + _MONTH_SHIFT[found.group(1)]
        year, month = divmod(index, 12)
        month += 1
        if found.group(2):
            return _month_end(year, month)
        if found.group(4):
            return date(year, month, 1)
        return _check_day(year, month, int(found.group(3)), f"{year}年{month}月{found.group(3)}日")
    if found := _REL_YEAR.match(s):
        year, month = today.year + _YEAR_SHIFT[found.group(1)], int(found.group(2))
        if found.group(4):
            if not 1 <= month <= 12:
                raise ParseError(f"「{month}月」はありません。{DATE_EXAMPLE}")
            return _month_end(year, month)
        if found.group(3) is None:
            raise ParseError(
                f"{year}年{month}月と読み取りました。日まで入力してください（例：{year}/{month}/15）。",
                f"{year}年{month}月",
            )
        return _check_day(year, month, int(found.group(3)), f"{year}年{month}月{found.group(3)}日")
    if found := _MONTH_DAY.match(s):
        month, day = int(found.group(1)), int(found.group(2))
        raise ParseError(
            f"{month}月{day}日の年がわかりません。年も入力してください（例：{today.year}/{month}/{day}）。"
        )
    return None


@dataclass(frozen=True)
class _Era:
    kanji: str
    head: str
    since: date
    until: date | None  # exclusive

    def __contains__(self, day: date) -> bool:
        return self.since <= day and (self.until is None or day < self.until)


def _modern_eras() -> tuple[_Era, ...]:
    """明治〜令和 from japanera's table, so a new era arrives with a library update."""
    wanted = ("明治", "大正", "昭和", "平成", "令和")
    found = {era.kanji: era for era in japanera.ERA_DATA_GENERAL if era.kanji in wanted}
    return tuple(
        _Era(str(found[k].kanji), str(found[k].english_head), found[k].since, found[k].until) for k in wanted
    )


_ERAS = _modern_eras()
_ERA_BY_NAME = {e.kanji: e for e in _ERAS} | {e.head: e for e in _ERAS}


def _component(text: str) -> int:
    if text.isdigit():
        return int(text)
    return int(kanjize.kanji2number(text))


def _check_day(year: int, month: int, day: int, label: str) -> date:
    if not 1 <= month <= 12:
        raise ParseError(f"{label}の「{month}月」はありません。月は1〜12で入力してください。{DATE_EXAMPLE}")
    try:
        return date(year, month, day)
    except ValueError:
        last = (
            (date(year, month % 12 + 1, 1) if month < 12 else date(year + 1, 1, 1)) - timedelta(days=1)
        ).day
        raise ParseError(
            f"{label}は存在しない日付です（{year}年{month}月は{last}日まで）。{DATE_EXAMPLE}", None
        ) from None


def era_of(day: date) -> tuple[str, int]:
    """The era name and year of a date from 明治 on: 2019-05-01 → ('令和', 1)."""
    for era in reversed(_ERAS):
        if day in era:
            return era.kanji, day.year - era.since.year + 1
    raise ValueError(f"no modern era for {day.isoformat()}")


def format_date(value: date, *, era: bool = False, weekday: bool = False) -> str:
    """2021-04-01 → '2021年4月1日', or with era=True '令和3年4月1日' (first year '元年')."""
    if era:
        name, year = era_of(value)
        text = f"{name}{'元' if year == 1 else year}年{value.month}月{value.day}日"
    else:
        text = f"{value.year}年{value.month}月{value.day}日"
    return text + (f"（{_WEEKDAYS[value.weekday()]}）" if weekday else "")


def parse_date(text: str, *, today: date | None = None) -> date:
    """A calendar date: 「2021/4/1」「2021-04-01」「2021年4月1日」「令和3年4月1日」「R3.4.1」「令和元年5月1日」.

    With `today`, relative dates are accepted too: 「今日」「昨日」「先月末」「先月15日」「去年の4月1日」.  Impossible dates
    (2021/2/30, 令和元年4月1日) are refused with the reason.
    """
    if (err := _too_long(text, DATE_EXAMPLE)) is not None:
        raise err
    s = _prepare(text).upper()
    if today is not None:
        relative = _relative_date(s, today)
        if relative is not None:
            return relative
    s = _WEEKDAY_TAIL.sub("", s) if len(s) > 2 else s
    if found := _MONTH_END.match(s):  # 「2022年3月末」: the last day of that month
        month_start = found.group(1) + "1日"
        first = _parse_date(month_start, text)
        return _month_end(first.year, first.month)
    try:
        return _parse_date(s, text)
    except ParseError:
        raise
    except Exception:  # kanji numerals kanjize cannot read, and similar
        raise _not_read(text, "日付", DATE_EXAMPLE) from None


def _parse_date(s: str, text: str) -> date:
    if found := _ERA.match(s):
        era = _ERA_BY_NAME[found.group(1)]
        rel = 1 if found.group(2) == "元" else _component(found.group(2))
        month, day = _component(found.group(3)), _component(found.group(4))
        if rel < 1:
            raise ParseError(f"{era.kanji}{rel}年はありません。{DATE_EXAMPLE}")
        year = era.since.year + rel - 1
        label = f"{era.kanji}{'元' if rel == 1 else rel}年{month}月{day}日"
        if year > MAX_YEAR:
            _year_in_range(year, label)
        result = _check_day(year, month, day, label)
        if result not in era:
            return _outside_era(result, era, label)
        return _in_range(result, label)
    for pattern in (_WESTERN_SEP, _COMPACT):
        if found := pattern.match(s):
            groups = [g for g in found.groups() if g not in ("-", "/", ".")]
            year, month, day = (int(g) for g in groups)
            label = f"{year}年{month}月{day}日"
            _year_in_range(year, label)
            return _check_day(year, month, day, label)
    if found := _WESTERN_KANJI.match(s):
        year, month, day = (_component(g) for g in found.groups())
        if year < 1000:
            raise ParseError(f"「{_shown(text)}」の年は4桁の西暦か和暦で入力してください{DATE_FORMS}")
        label = f"{year}年{month}月{day}日"
        _year_in_range(year, label)
        return _check_day(year, month, day, label)
    if _TWO_DIGIT.match(s):
        raise ParseError(
            f"「{_shown(text)}」は年が2桁のため、西暦か和暦か判断できません。"
            f"年は4桁の西暦か和暦で入力してください{DATE_FORMS}"
        )
    if _NO_DAY.match(s):
        raise ParseError(f"「{_shown(text)}」には日がありません。日まで入力してください{DATE_FORMS}")
    raise _not_read(text, "日付", DATE_EXAMPLE)


def _outside_era(day: date, era: _Era, label: str) -> date:
    first = format_date(era.since, era=True)
    if day < era.since:
        actual = format_date(day, era=True) if day >= _ERAS[0].since else format_date(day)
        raise ParseError(
            f"{label}はありません（{era.kanji}は{first}からです。{format_date(day)}は{actual}）。{DATE_EXAMPLE}",
            format_date(day),
        )
    # Only a past era has an end; a date after the current era's start is never outside it.
    last = (era.until or day) - timedelta(days=1)
    raise ParseError(
        f"{label}はありません（{era.kanji}は{format_date(last, era=True)}までです。"
        f"{format_date(day)}は{format_date(day, era=True)}）。{DATE_EXAMPLE}",
        format_date(day),
    )


def _year_in_range(year: int, label: str) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ParseError(f"{label}は範囲外です。{MIN_YEAR}年〜{MAX_YEAR}年の日付を入力してください。", label)


def _in_range(day: date, label: str) -> date:
    _year_in_range(day.year, label)
    return day


# ---------------------------------------------------------------- yes / no

_YES = frozenset(
    {
        "はい", "はーい", "はいはい", "うん", "ええ", "そう", "そうです", "そうだ", "yes", "y", "yeah", "ok",
        "okay", "おk", "おっけー", "オッケー", "オーケー", "了解", "りょうかい", "お願いします",
        "おねがいします", "あり", "あります", "ある", "いる", "います", "含む", "含みます", "含まれる",
        "含まれます", "する", "します", "はい含みます", "true", "○", "◯", "o",
    }
)  # fmt: skip
_NO = frozenset(
    {
        "いいえ", "いえ", "いや", "ううん", "いいや", "no", "n", "nope", "ノー", "違う", "ちがう", "違います",
        "ちがいます", "なし", "ない", "ありません", "いない", "いません", "含まない", "含みません",
        "含まれない", "含まれません", "しない", "しません", "false", "×", "x", "だめ", "ダメ",
    }
)  # fmt: skip
_UNSURE = ("わから", "分から", "わかりません", "不明", "知らない", "しらない", "未定", "たぶん", "多分")
_SPLIT = re.compile(r"[、,。.!！?？\s・]+")


def parse_yes_no(text: str) -> bool:
    """はい / いいえ in the ways people say them: 「うん」「yes」「いいえ、違います」「含まない」."""
    if (err := _too_long(text, YES_NO_EXAMPLE)) is not None:
        raise err
    s = unicodedata.normalize("NFKC", text).strip().lower()
    if any(word in s for word in _UNSURE):
        raise ParseError(
            f"「{_shown(text)}」は「はい」「いいえ」のどちらでもないと受け取りました。{YES_NO_EXAMPLE}。"
            "わからない場合は、事務局にご確認ください。",
            "わからない",
        )
    head = next((part for part in _SPLIT.split(s) if part), "")
    head = head.rstrip("ー〜~")
    if head in _YES or s.rstrip("。.!！") in _YES:
        return True
    if head in _NO or s.rstrip("。.!！") in _NO:
        return False
    raise _not_read(text, "回答", YES_NO_EXAMPLE)


def format_yes_no(value: bool) -> str:
    return "はい" if value else "いいえ"
