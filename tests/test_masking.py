"""Masking of personal data before text is stored, and the user-id pseudonyms."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.masking import EMAIL_MASK, NUMBER_MASK, PHONE_MASK, fold, hash_user, mask

FULL_WIDTH = str.maketrans("0123456789-()", "０１２３４５６７８９－（）")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("電話は03-1234-5678です", f"電話は{PHONE_MASK}です"),
        ("電話は０３－１２３４－５６７８です", f"電話は{PHONE_MASK}です"),
        ("０３ー１２３４ー５６７８に折り返して", f"{PHONE_MASK}に折り返して"),
        ("携帯090 1234 5678まで", f"携帯{PHONE_MASK}まで"),
        ("携帯は09012345678", f"携帯は{PHONE_MASK}"),
        ("(03)1234-5678", PHONE_MASK),
        ("０１２０－１２３－４５６", PHONE_MASK),
        ("+81-3-1234-5678 にどうぞ", f"{PHONE_MASK} にどうぞ"),
        ("+81 (0)90 1234 5678", PHONE_MASK),
        ("メールはtaro.yamada@example.co.jpです", f"メールは{EMAIL_MASK}です"),
        ("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｃｏｍ", EMAIL_MASK),
        ("法人番号1234567890123です", f"法人番号{NUMBER_MASK}です"),
        ("法人番号１２３４５６７８９０１２３", f"法人番号{NUMBER_MASK}"),
        ("連絡はtaro@例え.jp まで", f"連絡は{EMAIL_MASK} まで"),
        ("info@xn--r8jz45g.jp", EMAIL_MASK),
        ("hanako@münchen.de へ", f"{EMAIL_MASK} へ"),
        ("法人番号は1-2345-6789-0123です", f"法人番号は{NUMBER_MASK}です"),
        ("法人番号 1234-5678-9012-3", f"法人番号 {NUMBER_MASK}"),
        ("マイナンバー1234 5678 9012を伝えました", f"マイナンバー{NUMBER_MASK}を伝えました"),
        ("マイナンバー：１２３４－５６７８－９０１２", f"マイナンバー：{NUMBER_MASK}"),
        ("電話は〇三ー一二三四ー五六七八です", f"電話は{PHONE_MASK}です"),
        ("〇九〇一二三四五六七八に電話", f"{PHONE_MASK}に電話"),
        ("携帯 零九〇 一二三四 五六七八", f"携帯 {PHONE_MASK}"),
    ],
)
def test_examples_are_masked(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "営業利益1,234万円、人件費▲500万",
        "2021/4/1に納品、令和3年4月1日",
        "2021-04-01 に完了",
        "従業員10人、年間1,800時間",
        "１２３４５６７円",
        "受付時間 9:30〜17:30",
        "IT導入補助金2020の辞退届",
        "2021-04-01から2022-03-31まで",
        "三年目の効果報告、一二月に提出",
        "営業利益 1234 5678円",
    ],
)
def test_figures_and_dates_are_kept(text: str) -> None:
    assert mask(text) == text


def test_fold_keeps_the_length() -> None:
    text = "０３ー１２３４　ａ＠ｂ．ｃｏｍ ﬁ ①"
    assert len(fold(text)) == len(text)
    assert fold("０３ー１２＠") == "03-12@"


# -- properties -----------------------------------------------------------------------

EMAIL_LIKE = re.compile(r"[A-Za-z0-9]@[A-Za-z0-9]")
LONG_RUN = re.compile(r"\d{12,}")


def _leaks(text: str) -> list[str]:
    folded = fold(text)
    return EMAIL_LIKE.findall(folded) + LONG_RUN.findall(folded)


@settings(max_examples=400)
@given(st.text())
def test_never_raises_and_leaves_no_address_or_long_number(text: str) -> None:
    masked = mask(text)
    assert isinstance(masked, str)
    assert not _leaks(masked)


@given(st.text(alphabet=st.sampled_from("0１2３4-－ー @＠.a ｂ()+81"), max_size=60))
def test_dense_digit_text_leaves_nothing(text: str) -> None:
    assert not _leaks(mask(text))


@given(st.text())
def test_masking_is_idempotent(text: str) -> None:
    once = mask(text)
    assert mask(once) == once


# Text around a number: no characters that fold to a digit, so any digit left is a leak.
SURROUNDING = st.text(
    alphabet=st.characters(codec="utf-8").filter(
        lambda ch: not any(c.isdigit() for c in fold(ch)) and fold(ch) not in "+@"
    ),
    max_size=12,
)
SEPARATORS = st.sampled_from(["-", "－", "ー", "‐", "−", " ", "　", ""])


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    mobile = draw(st.booleans())
    digits = "0" + draw(st.from_regex(r"\A[1-9][0-9]{9}\Z" if mobile else r"\A[1-9][0-9]{8}\Z"))
    cut1 = draw(st.integers(2, 5))
    cut2 = draw(st.integers(cut1 + 1, len(digits) - 3))
    groups = [digits[:cut1], digits[cut1:cut2], digits[cut2:]]
    sep1, sep2 = draw(SEPARATORS), draw(SEPARATORS)
    style = draw(st.sampled_from(["plain", "parens", "intl"]))
    if style == "parens":
        number = f"({groups[0]}){sep2}{groups[1]}{sep2}{groups[2]}"
    elif style == "intl":
        number = f"+81{sep1}{groups[0][1:]}{sep1}{groups[1]}{sep2}{groups[2]}"
    else:
        number = f"{groups[0]}{sep1}{groups[1]}{sep2}{groups[2]}"
    return number.translate(FULL_WIDTH) if draw(st.booleans()) else number


@given(SURROUNDING, phone_numbers(), SURROUNDING)
def test_phone_numbers_in_any_text_are_masked(before: str, number: str, after: str) -> None:
    masked = mask(before + number + after)
    assert not any(ch.isdigit() for ch in fold(masked)), masked
    assert PHONE_MASK in masked


@given(SURROUNDING, st.from_regex(r"\A[0-9]{13}\Z"), SURROUNDING, st.booleans())
def test_corporate_numbers_in_any_text_are_masked(before: str, number: str, after: str, wide: bool) -> None:
    number = number.translate(FULL_WIDTH) if wide else number
    masked = mask(before + number + after)
    assert not any(ch.isdigit() for ch in fold(masked)), masked


@given(SURROUNDING, st.emails(), SURROUNDING)
def test_email_addresses_in_any_text_are_masked(before: str, address: str, after: str) -> None:
    masked = mask(f"{before} {address} {after}")
    assert "@" not in fold(masked), masked
    assert EMAIL_MASK in masked


# -- user ids -------------------------------------------------------------------------


def test_user_hash_is_salted_stable_and_hides_the_id() -> None:
    first = hash_user("salt-one-12345", "telegram", "123456789")
    assert first == hash_user("salt-one-12345", "telegram", "123456789")
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert "123456789" not in first
    assert first != hash_user("salt-two-12345", "telegram", "123456789")
    assert first != hash_user("salt-one-12345", "cli", "123456789")


@given(st.text(), st.text(), st.text())
def test_user_hash_never_raises(salt: str, channel: str, user: str) -> None:
    assert len(hash_user(salt, channel, user)) == 64
