"""A name the knowledge base does not know is a thing its documents do not describe.

「e-Taxにログインできない」 shares ログイン with the failed-login entry, which one of its wordings
says whole; coverage weighs e-Tax the most, being unknown, but the mean with that wording still
reached the answering bar.  The question is about another portal's login, so the bot says it has
no answer (with the near entry offered) rather than answer the login to its own portals.  A name
is a proper noun of three characters or more not in hiragana, or an unknown Latin-letter word of
four or more (faq/text.py, `Concept.name`): a kanji typo read as a one-character proper noun, and
abbreviations like TEL or HP, are not names.
"""

from __future__ import annotations

import pytest

from faq import Policy
from faq.text import Analyzer


def names(analyzer: Analyzer, text: str) -> set[str]:
    return {c.key for c in analyzer.analyze(text).concepts if c.name}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("e-Taxにログインできない", {"e-tax"}),
        ("マイナポータルに入れない", {"マイナ"}),
        ("弥生会計を解約したい", {"弥生会計"}),
        ("freeeにログインできない", {"freee"}),  # unknown to the dictionary, Latin letters
        # Not names: abbreviations, a kanji typo read as a one-character proper noun, kana.
        ("後年窓口 TEL 受付時間", set()),
        ("減価償却費はPLの数字でOK？", set()),
        ("栄業利益の欄には何をいれますか", set()),
        ("きげん すぎた こうかほうこく", set()),
    ],
)
def test_what_is_a_name(analyzer: Analyzer, text: str, expected: set[str]) -> None:
    assert {n.lower() for n in names(analyzer, text)} == expected


@pytest.mark.parametrize(
    "question",
    [
        "e-Taxにログインできないんですけど",
        "マイナポータルに入れなくなった",
        "ミラサポにログインするとエラーになる",
    ],
)
def test_another_portals_login_is_not_answered_with_ours(policy: Policy, question: str) -> None:
    outcome = policy.decide(question)
    assert outcome.status == "no_match"
    assert outcome.reason == "not covered"
    # The near entry is still offered: the user may have meant our portal after all.
    assert "it2020-login-failed" in [c.entry_id for c in outcome.suggestions]


def test_a_name_the_kb_knows_is_answered(policy: Policy) -> None:
    """gBizID is a name, and the KB's: the question is about what the documents describe."""
    outcome = policy.decide("gBizIDのIDがわからなくてマイページに入れない")
    assert outcome.status == "answered"
    assert outcome.entry is not None and outcome.entry.id == "it2020-mypage-id-forgotten"


def test_another_portal_is_not_said_to_be_in_the_other_programs_document(policy: Policy) -> None:
    """A 2023 user asking about another portal's login is not told that the 2020 document covers it."""
    outcome = policy.decide("マイナポータルに入れなくなった", program="it2023-multi")
    assert outcome.status == "no_match"
    assert outcome.reason == "not covered"
