"""What a question says of its nouns tells apart entries that share them (faq/text.py, faq/policy.py).

「申請マイページにログインできない」 and 「申請マイページのIDがわからない」 say the same nouns; what
goes wrong is in the predicate, which the matching leaves out (できる and 分かる name no subject).
「どんな場合に辞退届がいる？」 and 「辞退届はどうやって出す？」 differ in the kind of answer asked for,
said with stop words and question words (場合, どう).  Both are read as concepts of their own that
neither rank nor count for coverage: among entries too close to tell apart, those whose wordings
say the same stay.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import plain_faq_policy

from faq import Policy
from faq.text import ASK_CASE, ASK_WAY, PREDICATE_MARK, Analyzer


@pytest.mark.parametrize(
    ("text", "predicates"),
    [
        ("ログインできません", {"出来る"}),  # ません: ます, then ん
        ("ログインができず困っています", {"出来る"}),
        ("IDがわからなくなった", {"分かる"}),
        ("メールが届いていません", {"届く"}),  # て + いる is aspect: the predicate is before it
        ("効果報告の内容が見られない", {"見る"}),  # られ is an auxiliary
        ("辞退届を提出しなくていい？", {"提出"}),  # a サ変 noun stands for its する
        ("従業員がいない場合", {"居る"}),
        ("ログインはできるけどIDがわからない", {"分かる"}),  # only what is negated
        ("申請マイページのIDじゃない", set()),  # a noun negated: the noun itself says it
        ("特に問題ない", set()),  # 無い as an adjective negates no predicate
        ("ログインしたい", set()),
    ],
)
def test_the_negated_predicate_is_read(analyzer: Analyzer, text: str, predicates: set[str]) -> None:
    said = analyzer.analyze(text).predicates
    assert {p.removesuffix(PREDICATE_MARK) for p in said} == predicates
    assert all(p.endswith(PREDICATE_MARK) for p in said)


def test_a_predicate_is_no_word_of_the_text(analyzer: Analyzer) -> None:
    """It is neither ranked nor indexed, and never shown as a matched word."""
    analysis = analyzer.analyze("申請マイページにログインできない")
    assert analysis.predicates
    assert not set(analysis.predicates) & set(analysis.terms)
    assert not set(analysis.predicates) & set(analysis.full_terms)


def test_a_predicate_does_not_rank(policy: Policy) -> None:
    """The same nouns rank the same with or without the predicate; no candidate marks it."""
    plain = policy.matcher.rank("申請マイページにログイン")
    negated = policy.matcher.rank("申請マイページにログインできない")
    assert [(c.entry.id, round(c.relevance, 6)) for c in negated] == [
        (c.entry.id, round(c.relevance, 6)) for c in plain
    ]
    assert not any(t.endswith(PREDICATE_MARK) for c in negated for t in c.matched)


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("申請マイページにログインできない", "it2020-login-failed"),
        ("IT事業者ポータルにログインできなくて困ってます", "it2020-login-failed"),
        ("まいぺーじにろぐいんできない", "it2020-login-failed"),
        ("申請マイページのIDがわからない", "it2020-mypage-id-forgotten"),
        ("じゅうぎょういんがいないときのにんずう", "it2023-input-no-employees"),
        # The kind of answer asked for (the program is open: the 2020 side may stand beside it).
        ("どんな場合に辞退届がいる？", "it2023-withdrawal-triggers"),
        ("辞退届はどうやって出す", "it2023-withdrawal-how"),
        ("じたいとどけは どのように だせばいいの", "it2023-withdrawal-how"),
    ],
)
def test_the_entry_saying_the_same_of_the_nouns_answers(policy: Policy, question: str, entry_id: str) -> None:
    outcome = policy.decide(question)
    assert outcome.status == "answered", (outcome.status, outcome.reason)
    assert outcome.entry is not None and outcome.entry.id == entry_id


def test_without_the_predicate_the_nouns_alone_still_ask_back(policy: Policy) -> None:
    """「申請マイページ ログイン」 says neither what fails nor what is forgotten: asked back."""
    outcome = policy.decide("申請マイページ ログイン")
    assert outcome.status == "clarify"
    assert {c.entry_id for c in outcome.choices} >= {"it2020-login-failed", "it2020-mypage-id-forgotten"}


def test_a_predicate_does_not_answer_what_the_knowledge_base_does_not_cover(policy: Policy) -> None:
    """Another service's login says the failed-login entry's predicate; its subject is elsewhere."""
    for question in ("Amazonのアカウントにログインできない", "会社のパソコンにログインできない"):
        assert policy.decide(question).status == "no_match", question


def test_the_predicate_tells_entries_apart_in_any_faq(tmp_path: Path) -> None:
    """Nothing is fitted to our entries: two wordings of any FAQ with the same nouns, one negated."""
    rows = [
        {"id": "late", "question": "会員証が届きません", "answer": "発送から一週間お待ちください。"},
        {"id": "came", "question": "会員証が届きました", "answer": "同封の案内に沿って登録してください。"},
    ]
    policy = plain_faq_policy(tmp_path, rows)
    outcome = policy.decide("会員証が届かない")
    assert (outcome.status, outcome.entry.id if outcome.entry else None) == ("answered", "late")
    # Only a negation is read: the plain predicate says nothing the nouns do not, and is asked back.
    assert policy.decide("会員証が届いた").status == "clarify"
    assert policy.decide("会員証 届く").status == "clarify"


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("どんな場合に辞退届が必要ですか", {ASK_CASE}),
        ("どういった時に出すの", {ASK_CASE}),  # どう + いっ + た before the noun of circumstance
        ("辞退届っていつ出すの", {ASK_CASE}),
        ("辞退届はどうやって出す", {ASK_WAY}),
        ("どのように提出しますか", {ASK_WAY}),
        ("じたいとどけのだしかた", {ASK_WAY}),  # a verb's 〜方, in kana
        ("両方とも解約した", set()),  # 両方 is no verb's 〜方
        ("辞退届を出した", set()),
    ],
)
def test_the_kind_of_answer_asked_for_is_read(analyzer: Analyzer, text: str, asks: set[str]) -> None:
    said = analyzer.analyze(text).predicates
    assert {p for p in said if not p.endswith(PREDICATE_MARK)} == asks


def test_one_editors_phrasing_tells_nothing_apart(policy: Policy) -> None:
    """Only the applicant's entry has a paraphrase ending in 「…する方法」; the supplier's asks for no
    kind.  「どのように」 does not pick the applicant's entry for that: who asks is still open."""
    outcome = policy.decide("登録内容の変更はどのように行えばよいでしょうか")
    assert outcome.status == "clarify"
    assert {c.entry_id for c in outcome.choices} == {
        "it2020-applicant-info-change",
        "it2020-vendor-info-change",
    }


def test_the_kind_asked_for_tells_entries_apart_in_any_faq(tmp_path: Path) -> None:
    rows = [
        {"id": "case", "question": "会員証の再発行はどんな場合ですか", "answer": "紛失や破損のときです。"},
        {"id": "way", "question": "会員証の再発行はどのようにしますか", "answer": "窓口で申請してください。"},
    ]
    policy = plain_faq_policy(tmp_path, rows)
    assert policy.decide("会員証 再発行").status == "clarify"
    for question, entry_id in (
        ("会員証の再発行はどんなときにいる？", "case"),
        ("会員証の再発行はどうやってするの", "way"),
    ):
        outcome = policy.decide(question)
        assert (outcome.status, outcome.entry.id if outcome.entry else None) == ("answered", entry_id), (
            question
        )
