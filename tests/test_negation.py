"""A phrase the asker says the question is not about (faq/text.py, `negations`).

「ポータルじゃなくてマイページの方のIDがわからない」 names the portal only to rule it out: counted
like any word, ポータル pulled the question to the portal entry.  A question's negated phrase
adds no concept; a KB wording keeps it, since there the contrast is what the entry answers.
"""

from __future__ import annotations

import pytest

from faq import Policy
from faq.text import Analyzer


def _keys(analyzer: Analyzer, text: str, *, negations: bool = True) -> set[str]:
    return {c.key for c in analyzer.analyze(text, negations=negations).concepts}


@pytest.mark.parametrize(
    ("text", "dropped", "kept"),
    [
        (
            "ポータルじゃなくてマイページのログインIDがわからない",
            {"ポータル"},
            {"申請マイページ", "ログインID"},
        ),
        (
            "IT事業者ポータルではなく申請マイページのIDを忘れた",
            {"IT", "事業者", "ポータル"},
            {"申請マイページ"},
        ),
        (
            "マイページの方じゃなくポータルのIDを忘れた",
            {"申請マイページ"},
            {"ポータル"},
        ),  # through の to 方's noun
        ("営業利益でなく減価償却費の欄", {"営業利益"}, {"減価償却費"}),
        ("メールが届かないんじゃなくて差し戻しのメールが来た", {"未達"}, {"通知メール", "差し戻し"}),
    ],
)
def test_the_negated_phrase_adds_no_concept(
    policy: Policy, text: str, dropped: set[str], kept: set[str]
) -> None:
    analyzer = policy.matcher.analyzer
    keys = _keys(analyzer, text)
    assert not keys & (dropped | {"無い"}), keys  # nor the marker's なく
    assert kept <= keys, keys
    # Without `negations` (a KB wording) every word counts.
    assert dropped <= _keys(analyzer, text, negations=False)


@pytest.mark.parametrize(
    "text",
    [
        "一部のツールを解約したら辞退届がいるんじゃない？",  # a tag question: nothing is ruled out
        "解約ではなく。",  # nothing follows: nothing is chosen instead
        "半年で解約した",  # で as a particle, not a copula
        "メールが来ない",
        "人件費ではなく役員報酬だけ書いてもいいですか",  # may B stand in for A: a question about A
        "営業利益でなく売上総利益で計算してもかまいませんか",
    ],
)
def test_text_without_a_negated_alternative_keeps_every_word(policy: Policy, text: str) -> None:
    analyzer = policy.matcher.analyzer
    assert _keys(analyzer, text) == _keys(analyzer, text, negations=False)


def test_a_word_said_again_outside_the_negated_phrase_still_counts(policy: Policy) -> None:
    keys = _keys(policy.matcher.analyzer, "IDじゃなくてパスワードを忘れた、IDは分かる")
    assert {"パスワード", "ログインID"} <= keys


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("ポータルの方じゃなくてマイページのログインIDがわからない", "it2020-mypage-id-forgotten"),
        ("マイページの方じゃなくてポータルのログインIDがわからない", "it2020-portal-id-forgotten"),
        ("メールが来ないんじゃなくて差し戻しの通知が来た", "it2023-mail-returned"),
    ],
)
def test_the_answer_is_for_what_the_user_chose(policy: Policy, question: str, entry_id: str) -> None:
    outcome = policy.decide(question)
    assert outcome.status == "answered", outcome
    assert [e.id for e in outcome.answers] == [entry_id]
