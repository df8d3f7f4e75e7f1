"""How long a question says something lasted (faq/durations.py), and the entries it tells apart."""

from __future__ import annotations

import math

import pytest

from faq import Policy
from faq.durations import Span, stated_months


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("5か月で解約", Span(5, 5)),
        ("導入から14ヶ月", Span(14, 14)),
        ("十か月でやめる", Span(10, 10)),
        ("半年もたたずに解約", Span(0, 6)),
        ("1年未満", Span(0, 12)),
        ("1年たたずに使わなくなった", Span(0, 12)),
        ("1年以上", Span(12, math.inf)),
        ("導入して2年経過した", Span(24, math.inf)),
        ("1年半たった", Span(18, math.inf)),
        ("2年半使って", Span(30, 30)),
        ("3年目で解約", Span(24, 36)),
        ("数か月で解約", Span(1, 12)),
        ("2年間使った", Span(24, 24)),
        # A span negated is one not yet reached.
        ("まだ1年たってない", Span(0, 12)),
        ("導入後1年経過していないツール", Span(0, 12)),
        ("半年も経ってへん", Span(0, 6)),
        ("1年たってませんが", Span(0, 12)),
        ("まだ1年になってない", Span(0, 12)),
        ("1年に満たない", Span(0, 12)),
        ("1年経たないうちに", Span(0, 12)),
        ("1年過ぎてなくて", Span(0, 12)),
        # 「しか」 with a negation is "only": the span itself, not under it.
        ("10か月しか経っていない", Span(10, 10)),
        ("8ヶ月くらいしか経ってない", Span(8, 8)),
        # The span reached, for contrast: the same verbs without the negation.
        ("2年たってる", Span(24, math.inf)),
        ("1年経過した", Span(12, math.inf)),
    ],
)
def test_a_stated_span_is_read_in_months(text: str, span: Span) -> None:
    assert stated_months(text) == span


@pytest.mark.parametrize(
    "text",
    [
        "2023年4月に解約した",  # a date: a four-digit year, a month without a counter
        "令和2年度補正で導入",  # a fiscal year
        "令和2年に導入した",  # an era year
        "毎年の効果報告",
        "3か月で導入して2年で解約",  # two spans that differ: none
    ],
)
def test_dates_and_mixed_spans_state_no_span(text: str) -> None:
    assert stated_months(text) is None


def test_a_span_fits_inside_outside_or_cannot_tell() -> None:
    first_year, after = (None, 12), (12, None)
    assert Span(10, 10).fits(*first_year) is True
    assert Span(10, 10).fits(*after) is False
    assert Span(24, 36).fits(*after) is True
    assert Span(0, 12).fits(*after) is False
    # 「1年で解約」: a bare point on the edge, said for "about a year"; 「1年以内」 straddles it.
    assert Span(12, 12).fits(*first_year) is None and Span(12, 12).fits(*after) is None
    assert stated_months("1年以内") is not None
    assert stated_months("1年以内").fits(*after) is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("question", "entry"),
    [
        ("2020で入れた会計ソフト、5か月で解約したら何が必要？", "it2020-cancel-within-year"),
        ("2020で導入して4年目のツールをやめる場合の手続き", "it2020-cancel-after-year"),
    ],
)
def test_a_stated_span_answers_with_the_sibling_it_fits(policy: Policy, question: str, entry: str) -> None:
    outcome = policy.decide(question)
    assert outcome.status == "answered" and outcome.entry is not None and outcome.entry.id == entry


def test_a_sibling_the_span_contradicts_is_never_the_answer(policy: Policy) -> None:
    # 14 months is past the first year, whatever words the question shares with that entry.
    outcome = policy.decide("2020 導入から14ヶ月 解約")
    assert "it2020-cancel-within-year" not in [c.entry.id for c in outcome.candidates]
    assert outcome.entry is None or outcome.entry.id == "it2020-cancel-after-year"


def test_a_span_about_something_else_is_not_read_into_the_question(policy: Policy) -> None:
    # The report's third year, not a tool used for three years: nothing of 1年以上 is read in.
    matcher = policy.matcher
    prepared = matcher.prepare(matcher.analyzer.analyze("効果報告は3年目もあるの？"))
    assert prepared.span is not None and prepared.span_words == frozenset()


def test_words_read_in_from_a_span_do_not_name_a_program(policy: Policy) -> None:
    # 「7ヶ月」 reads as 1年未満, a phrase of the 2020 FAQ only; the question names no program, so
    # the 2023 answer still stands beside the 2020 one.
    outcome = policy.decide("導入から7ヶ月のツールをやめたい")
    assert {e.id for e in outcome.answers} == {"it2020-cancel-within-year", "it2023-withdrawal-triggers"}
