"""Parsers read what applicants type, refuse the rest with a re-prompt, and read back what they format."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.parsing import (
    MAX_AMOUNT,
    MAX_COUNT,
    ParseError,
    era_of,
    format_count,
    format_date,
    format_hours,
    format_money,
    format_productivity,
    format_report_year,
    format_yen,
    format_yes_no,
    parse_amount,
    parse_count,
    parse_date,
    parse_hours,
    parse_productivity,
    parse_report_year,
    parse_yes_no,
    read_amount,
)

# ---------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,234万円", 12_340_000),
        ("▲500万", -5_000_000),
        ("△3百万円", -3_000_000),
        ("１２３４５６７円", 1_234_567),
        ("約3億", 300_000_000),
        ("-200000", -200_000),
        ("3000万", 30_000_000),
        ("1.5億円", 150_000_000),
        ("マイナス200万円", -2_000_000),
        ("−1,000", -1_000),
        ("1,234千円", 1_234_000),
        ("12百万円", 12_000_000),
        ("三百万円", 3_000_000),
        ("千二百万", 12_000_000),
        ("1億2,345万6789円", 123_456_789),
        ("0.5万", 5_000),
        ("¥1,000", 1_000),
        ("￥１，０００", 1_000),
        ("0", 0),
        ("-0", 0),
        (" 3000万円です。", 30_000_000),
        ("3000万円くらい", 30_000_000),
        ("1兆円", 10**12),
    ],
)
def test_amount_golden(text: str, expected: int) -> None:
    assert parse_amount(text) == Decimal(expected)


def test_amount_approximate_is_noted() -> None:
    reading = read_amount("約3億")
    assert reading.approximate
    assert reading.note is not None and "3億円" in reading.note and "正確な数値" in reading.note
    assert not read_amount("3億").approximate
    assert read_amount("3億").note is None
    assert read_amount("3000万円程度").approximate


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "金額が入力されていません"),
        ("abc", "「abc」を金額として読み取れませんでした"),
        ("1,2345", "カンマの位置"),
        ("1.5", "1円未満の端数"),
        ("1億20000万", "桁が合いません"),
        ("万円", "読み取れませんでした"),
        ("▲-500", "符号"),
        ("1" * 70, "長すぎます"),
        ("10000兆", "大きすぎます"),
    ],
)
def test_amount_errors_say_what_was_understood_and_what_is_expected(text: str, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_amount(text)
    assert fragment in info.value.message
    assert str(info.value) == info.value.message


def test_amount_error_keeps_what_was_understood() -> None:
    with pytest.raises(ParseError) as info:
        parse_amount("1.5円")
    assert info.value.understood == "1.5円"
    assert "例：1,200万円" in info.value.message


def test_unreadable_amount_uses_the_standard_reprompt() -> None:
    with pytest.raises(ParseError) as info:
        parse_amount("たくさん")
    assert info.value.message.endswith("金額を数字で入力してください（例：1,200万円）")
    assert info.value.understood is None


def test_format_money_is_the_one_format_shown_to_people() -> None:
    assert format_money(Decimal(30_000_000)) == "3,000万円"
    assert format_money(Decimal(-5_000_000)) == "▲500万円"
    assert format_money(Decimal(150_000_000)) == "1億5,000万円"
    assert format_money(Decimal(999)) == "999円"
    assert format_money(Decimal("-1.5")) == "▲1.5円"  # a fraction is shown, never rounded
    assert parse_amount(format_money(Decimal(-5_000_000))) == Decimal(-5_000_000)


def test_format_yen() -> None:
    assert format_yen(Decimal(12_345_678)) == "12,345,678円"
    assert format_yen(Decimal(-500_000)) == "▲500,000円"
    assert format_yen(Decimal(150_000_000), style="man") == "1億5,000万円"
    assert format_yen(Decimal(12_345_678), style="man") == "1,234万5,678円"
    assert format_yen(Decimal(999), style="man") == "999円"
    with pytest.raises(ValueError):
        format_yen(Decimal("1.5"))


# ---------------------------------------------------------------- counts, hours, years


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10人", 10), ("十人", 10), ("3名", 3), ("１０", 10), ("二十五名", 25), ("ひとり", 1), ("0人", 0)],
)
def test_count_golden(text: str, expected: int) -> None:
    assert parse_count(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"), [("-3人", "マイナス"), ("2.5人", "整数"), ("たくさん", "人数として読み取れません")]
)
def test_count_errors(text: str, fragment: str) -> None:
    with pytest.raises(ParseError, match=fragment):
        parse_count(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,800時間", "1800"),
        ("1800h", "1800"),
        ("1800H", "1800"),
        ("1800hrs", "1800"),
        ("年間1,850.5時間", "1850.5"),
        ("千八百時間", "1800"),
        ("1800時間/年", "1800"),
        ("8784", "8784"),
    ],
)
def test_hours_golden(text: str, expected: str) -> None:
    assert parse_hours(text) == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "fragment"), [("8785時間", "最大8,784時間"), ("-1h", "マイナス"), ("長い", "時間")]
)
def test_hours_errors(text: str, fragment: str) -> None:
    with pytest.raises(ParseError, match=fragment):
        parse_hours(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", 1), ("2", 2), ("１", 1), ("1年度目", 1), ("2年目", 2), ("二年度目", 2), ("第1年度", 1)],
)
def test_report_year(text: str, expected: int) -> None:
    assert parse_report_year(text) == expected


@pytest.mark.parametrize("text", ["3", "0", "", "三年目", "12"])
def test_report_year_errors(text: str) -> None:
    with pytest.raises(ParseError, match="1 または 2"):
        parse_report_year(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3,055.56", "3055.56"),
        ("3055.56円/時間", "3055.56"),
        ("▲120", "-120"),
        ("0", "0"),
        ("2,800円", "2800"),
    ],
)
def test_productivity_value(text: str, expected: str) -> None:
    assert parse_productivity(text) == Decimal(expected)


# ---------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021/4/1", date(2021, 4, 1)),
        ("2021-04-01", date(2021, 4, 1)),
        ("2021.4.1", date(2021, 4, 1)),
        ("20210401", date(2021, 4, 1)),
        ("令和3年4月1日", date(2021, 4, 1)),
        ("R3.4.1", date(2021, 4, 1)),
        ("r03/04/01", date(2021, 4, 1)),
        ("2021年4月1日", date(2021, 4, 1)),
        ("２０２１年４月１日", date(2021, 4, 1)),
        ("令和元年5月1日", date(2019, 5, 1)),
        ("令和三年四月一日", date(2021, 4, 1)),
        ("二〇二一年四月一日", date(2021, 4, 1)),
        ("平成31年4月30日", date(2019, 4, 30)),
        ("H31.4.30", date(2019, 4, 30)),
        ("昭和64年1月7日", date(1989, 1, 7)),
        ("平成元年1月8日", date(1989, 1, 8)),
        ("2021年4月1日(木)", date(2021, 4, 1)),
        ("2021年4月1日（木曜日）", date(2021, 4, 1)),
        ("2020/2/29", date(2020, 2, 29)),
        ("㋿3年4月1日", date(2021, 4, 1)),
    ],
)
def test_date_golden(text: str, expected: date) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("2021/2/30", "2021年2月30日は存在しない日付です（2021年2月は28日まで）"),
        ("2021/2/29", "2021年2月は28日まで"),
        ("2020/2/30", "2020年2月は29日まで"),
        ("2021/13/1", "月は1〜12"),
        ("2021/4/31", "4月は30日まで"),
        ("令和元年4月1日", "令和は令和元年5月1日から"),
        ("平成32年1月1日", "平成は平成31年4月30日まで"),
        ("昭和64年1月8日", "平成元年1月8日"),
        ("21/4/1", "年が2桁"),
        ("2021年4月", "日まで入力してください"),
        ("令和0年1月1日", "令和0年はありません"),
        ("1899/12/31", "1900年〜2100年"),
        ("あした", "日付として読み取れませんでした"),
        ("", "日付が入力されていません"),
    ],
)
def test_date_errors(text: str, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_date(text)
    assert fragment in info.value.message


def test_relative_dates_need_today() -> None:
    today = date(2024, 2, 29)
    assert parse_date("今日", today=today) == today
    assert parse_date("明日", today=today) == date(2024, 3, 1)
    assert parse_date("昨日", today=today) == date(2024, 2, 28)
    with pytest.raises(ParseError):
        parse_date("今日")


def test_format_date() -> None:
    assert format_date(date(2021, 4, 1)) == "2021年4月1日"
    assert format_date(date(2021, 4, 1), era=True) == "令和3年4月1日"
    assert format_date(date(2019, 5, 1), era=True) == "令和元年5月1日"
    assert format_date(date(2019, 4, 30), era=True) == "平成31年4月30日"
    assert format_date(date(2021, 4, 1), weekday=True) == "2021年4月1日（木）"
    assert era_of(date(1912, 7, 30)) == ("大正", 1)
    assert era_of(date(1912, 7, 29)) == ("明治", 45)


# ---------------------------------------------------------------- yes / no


@pytest.mark.parametrize(
    "text", ["はい", "はーい", "うん", "ええ", "yes", "Y", "OK", "はい、お願いします", "含む", "そうです。"]
)
def test_yes(text: str) -> None:
    assert parse_yes_no(text) is True


@pytest.mark.parametrize(
    "text", ["いいえ", "いや", "ううん", "no", "N", "いいえ、違います", "含まない", "なし"]
)
def test_no(text: str) -> None:
    assert parse_yes_no(text) is False


@pytest.mark.parametrize("text", ["わからない", "たぶん", "ほげ", ""])
def test_yes_no_errors(text: str) -> None:
    with pytest.raises(ParseError, match="「はい」か「いいえ」"):
        parse_yes_no(text)


# ---------------------------------------------------------------- properties

PARSERS = [
    parse_amount,
    read_amount,
    parse_count,
    parse_hours,
    parse_productivity,
    parse_report_year,
    parse_date,
    parse_yes_no,
]
# Characters the parsers give meaning to, so generated text reaches deep branches.
_MEANINGFUL = st.text(
    alphabet="0123456789０１２３,.，．-−▲△約万億兆千百十一二三四五六七八九〇元円人名時間h年月日/令和平成昭RHS元()（）木はいえう ",
    max_size=24,
)


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
@settings(max_examples=400, deadline=None)
@given(text=st.one_of(st.text(max_size=80), _MEANINGFUL))
def test_parsers_raise_only_parse_error(parser: object, text: str) -> None:
    assert callable(parser)
    try:
        parser(text)
    except ParseError as exc:
        assert exc.message.strip()
        assert "\n" not in exc.message


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-int(MAX_AMOUNT) + 1, max_value=int(MAX_AMOUNT) - 1))
def test_amount_round_trip(value: int) -> None:
    amount = Decimal(value)
    assert parse_amount(format_yen(amount)) == amount
    assert parse_amount(format_yen(amount, style="man")) == amount
    assert read_amount("約" + format_yen(amount)).approximate


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=MAX_COUNT))
def test_count_round_trip(value: int) -> None:
    assert parse_count(format_count(value)) == value


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=0, max_value=8784, places=2, allow_nan=False, allow_infinity=False))
def test_hours_round_trip(value: Decimal) -> None:
    assert parse_hours(format_hours(value)) == value


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False, allow_infinity=False))
def test_productivity_round_trip(value: Decimal) -> None:
    assert parse_productivity(format_productivity(value)) == value


@settings(max_examples=300, deadline=None)
@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
def test_date_round_trip(value: date) -> None:
    assert parse_date(format_date(value)) == value
    assert parse_date(format_date(value, era=True)) == value
    assert parse_date(format_date(value, weekday=True)) == value
    assert parse_date(value.isoformat()) == value
    assert parse_date(f"{value.year}/{value.month}/{value.day}") == value


@pytest.mark.parametrize("value", [1, 2])
def test_report_year_round_trip(value: int) -> None:
    assert parse_report_year(format_report_year(value)) == value  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [True, False])
def test_yes_no_round_trip(value: bool) -> None:
    assert parse_yes_no(format_yes_no(value)) is value


# ---------------------------------------------------------------- words people use


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("赤字500万", -5_000_000),
        ("500万の赤字", -5_000_000),
        ("赤字で500万", -5_000_000),
        ("500万赤字", -5_000_000),
        ("損失300万円", -3_000_000),
        ("黒字で300万", 3_000_000),
        ("ゼロ", 0),
        ("ゼロです", 0),
        ("零", 0),
    ],
)
def test_losses_and_zero_in_words(text: str, expected: int) -> None:
    assert parse_amount(text) == Decimal(expected)


def test_a_loss_word_with_a_sign_is_not_negated_twice() -> None:
    with pytest.raises(ParseError):
        parse_amount("赤字▲▲500万")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("初年度", 1),
        ("1回目", 1),
        ("一回目", 1),
        ("初回です", 1),
        ("2回目", 2),
        ("2年目の報告", 2),
        ("最初", 1),
    ],
)
def test_report_year_in_words(text: str, expected: int) -> None:
    assert parse_report_year(text) == expected


TODAY = date(2026, 11, 28)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("今日", TODAY),
        ("本日", TODAY),
        ("昨日", date(2026, 11, 27)),
        ("一昨日", date(2026, 11, 26)),
        ("先月末", date(2026, 10, 31)),
        ("今月末", date(2026, 11, 30)),
        ("先月15日", date(2026, 10, 15)),
        ("先月の15日", date(2026, 10, 15)),
        ("来月1日", date(2026, 12, 1)),
        ("去年の4月1日", date(2025, 4, 1)),
        ("昨年4月1日", date(2025, 4, 1)),
        ("去年の12月末", date(2025, 12, 31)),
        ("今年の3月31日", date(2026, 3, 31)),
    ],
)
def test_relative_dates_use_the_given_today(text: str, expected: date) -> None:
    assert parse_date(text, today=TODAY) == expected


def test_relative_dates_in_january_cross_the_year() -> None:
    assert parse_date("先月末", today=date(2027, 1, 10)) == date(2026, 12, 31)


@pytest.mark.parametrize(("text", "shown"), [("去年の4月", "2025年4月"), ("5月1日", "年も入力")])
def test_a_date_without_day_or_year_is_asked_again_with_what_was_read(text: str, shown: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_date(text, today=TODAY)
    assert shown in info.value.message


def test_relative_dates_need_a_clock() -> None:
    with pytest.raises(ParseError):
        parse_date("先月末")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022年3月末", date(2022, 3, 31)),
        ("令和4年2月末", date(2022, 2, 28)),
        ("2024年2月末日", date(2024, 2, 29)),
    ],
)
def test_the_end_of_a_month(text: str, expected: date) -> None:
    assert parse_date(text) == expected
