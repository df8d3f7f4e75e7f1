"""A word the KB does not know, said as what is cancelled or introduced, is the KB's usual object.

The documents speak of the subsidised tool as ITツール; an applicant names it by its brand or its
kind: 「勘定奉行を導入して半年で解約」, 「クラウドサービスを解約」.  Unknown, such a word weighed the
most in coverage (and a name was refused outright), so the cancellation question got "not found".
Said as the object of a verb (を), it stands for the word the KB's texts most often say as that
verb's object (faq/matcher.py, `_usual_objects`).  Said otherwise (「freeeのパスワード」,
「弥生会計にログイン」), it names a thing of its own and stays unknown.
"""

from __future__ import annotations

from pathlib import Path

from conftest import plain_faq_policy

from faq import Policy
from faq.text import Analyzer


def test_what_a_text_does_to_what(analyzer: Analyzer) -> None:
    assert ("スマレジ", "解約") in analyzer.analyze("スマレジを解約したい").objects
    assert analyzer.analyze("スマレジの解約").objects == ()  # の is no object


def test_a_tool_named_by_its_brand_is_the_kbs_tool(policy: Policy) -> None:
    matcher = policy.matcher
    query = matcher.prepare(matcher.analyzer.analyze("勘定奉行を導入して半年で解約", negations=True))
    assert any("ITツール" in full for full, *_ in query.concepts)
    outcome = policy.decide("勘定奉行を導入して半年で解約することになった")
    assert outcome.status == "answered"
    assert [e.id for e in outcome.answers] == ["it2020-cancel-within-year", "it2023-withdrawal-triggers"]


def test_a_name_said_otherwise_stays_unknown(policy: Policy) -> None:
    for question in ("弥生会計にログインできない", "freeeのパスワードを忘れました"):
        assert policy.decide(question).status == "no_match", question


def test_any_faq_reads_an_unknown_object_as_its_usual_one(tmp_path: Path) -> None:
    """The reading is the FAQ's own: a gym's FAQ cancels 会員プラン, so a course it does not
    list, cancelled, is a plan; asked about otherwise, the course is still unknown."""
    policy = plain_faq_policy(
        tmp_path,
        [
            {
                "id": "cancel",
                "question": "会員プランを解約するにはどうすればいいですか",
                "answer": "会員プランの解約は、退会日の前月末までに受付で手続きしてください。",
            },
            {
                "id": "change",
                "question": "会員プランを変更できますか",
                "answer": "プランの変更は毎月1日から適用されます。受付で申請してください。",
            },
            {
                "id": "hours",
                "question": "営業時間を教えてください",
                "answer": "平日は7時から23時まで営業しています。",
            },
        ],
    )
    answered = policy.decide("ヨガコースを解約したい")
    assert answered.status == "answered"
    assert answered.entry is not None and answered.entry.id == "cancel"
    assert policy.decide("ヨガコースの予約方法").status == "no_match"
