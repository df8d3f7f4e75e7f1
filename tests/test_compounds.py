"""Two nouns said as one word, where the documents use that word as a term, name one thing.

Sudachi splits a compound its dictionary does not list: 実績報告 reaches the matcher as 実績 and
報告.  The report-period entry says both, apart (「入力する実績は何か月分」, 効果報告), so
「実績報告のやり方」 was answered with it.  The 実績報告 is another procedure, which the 2020 FAQ
names (「事業実施・実績報告の手引き」) and no entry describes.  Where a question's compound is
said as one word somewhere in the KB, an entry that says its nouns only apart covers each of them
partly, as a compound part does (faq/matcher.py, `question_coverage`).  A compound the KB never
says as one word (ツール解約) is the asker's terse way of putting two words, and counts as before.
"""

from __future__ import annotations

import pytest

from faq import Policy
from faq.text import Analyzer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("実績報告のやり方", {("実績", "報告")}),
        # A word the dictionary lists whole pairs as itself, and by its touching part where it
        # has parts (申請内容 is 申請 + 内容; 申請時 has none).
        ("交付申請時の実績値", {("交付", "申請時")}),
        ("交付申請内容", {("交付", "申請内容"), ("交付", "申請")}),
        # Joined by a particle, the nouns are said apart.
        ("補助金の返還", set()),
        # A counter after a number says how many, not what: 5年以内 is no term.
        ("5年以内に解約", set()),
    ],
)
def test_what_is_a_compound(analyzer: Analyzer, text: str, expected: set[tuple[str, str]]) -> None:
    assert set(analyzer.analyze(text).compounds) == expected


def test_an_entry_saying_the_nouns_apart_covers_the_compound_partly(policy: Policy) -> None:
    matcher = policy.matcher
    query = matcher.prepare(matcher.analyzer.analyze("実績報告のやり方", negations=True))
    assert query.compounds == (("実績", "報告"),)  # said as one word in the 2020 FAQ
    apart = matcher.position["it2023-report-period-figures"]  # 実績 ... 効果報告
    whole = matcher.position["it2020-delivery-base-date"]  # 「実績報告の納品日」
    assert matcher.question_coverage(query, apart) == pytest.approx(0.5)
    assert matcher.question_coverage(query, whole) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "question",
    ["実績報告のやり方を教えて", "実績報告って何をいつまでに出すの"],
)
def test_a_term_no_entry_describes_is_not_answered(policy: Policy, question: str) -> None:
    outcome = policy.decide(question)
    assert outcome.status == "no_match"


def test_an_entry_that_says_the_term_still_answers(policy: Policy) -> None:
    outcome = policy.decide("事務局に出した実績報告の納品日がツールで違うときは？")
    assert outcome.status == "answered"
    assert outcome.entry is not None and outcome.entry.id == "it2020-delivery-base-date"


def test_a_compound_the_kb_never_says_whole_counts_as_before(policy: Policy) -> None:
    """ツール解約 is said apart throughout (「ツールを解約」): the asker's terse form, no term."""
    matcher = policy.matcher
    query = matcher.prepare(matcher.analyzer.analyze("2020 ツール解約 1年未満", negations=True))
    assert query.compounds == ()
    outcome = policy.decide("2020 ツール解約 1年未満")
    assert outcome.status == "answered"
    assert outcome.entry is not None and outcome.entry.id == "it2020-cancel-within-year"
