"""うち is a word of the subject only when it means "among" (faq/text.py, `_speakers_or_while`).

「うちの会社で入れたツールを解約したい」 is a cancellation, not a partial one: its うち is the asker's
company.  「3つのうち1つだけ解約」 is the partial one.  The dictionary gives one form for both, so
the analyzer reads which one it is from what comes before it, for any FAQ.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import plain_faq_policy

from faq import Policy
from faq.text import NOT_COUNTED, Analyzer


@pytest.mark.parametrize(
    ("text", "among"),
    [
        ("うちの会社で入れたツールを解約したい", False),  # the asker's company
        ("うちは2020です", False),
        ("お客様 うちで使ってたツール", False),
        ("1年経たないうちに解約した", False),  # "while"
        ("3つのうち1つだけ解約したい", True),  # "among"
        ("そのうち1つを解約します", True),
        ("いくつか導入したうちの一部を使わなくなった", True),
    ],
)
def test_uchi_is_a_word_only_when_it_means_among(analyzer: Analyzer, text: str, among: bool) -> None:
    assert ("うち" in analyzer.analyze(text).terms) is among


def test_the_askers_company_does_not_pull_a_question_to_the_entry_about_one_of_several(
    tmp_path: Path,
) -> None:
    """A plain FAQ of any subject: 「うちの会員証」 is the general cancellation."""
    rows = [
        {"id": "cancel", "question": "会員証を解約したい", "answer": "窓口で解約できます。"},
        {
            "id": "cancel-one",
            "question": "2枚の会員証のうち1枚だけ解約したい",
            "answer": "残す1枚を窓口でお知らせください。",
        },
    ]
    policy = plain_faq_policy(tmp_path, rows)
    out = policy.decide("うちの会員証を解約したい")
    assert out.status == "answered"
    assert out.entry is not None and out.entry.id == "cancel"
    among = policy.decide("会員証2枚のうち1枚を解約したい")
    assert among.entry is not None and among.entry.id == "cancel-one"


# 弊社, 当社, うちの会社 stand for the subsidised company (補助事業者 in the KB's synonyms) unless
# the asker says it is another party: 「弊社はITベンダーとして…」 (faq/text.py, SELF_REFERENCES).
@pytest.mark.parametrize(
    ("text", "subsidised"),
    [
        ("弊社はITベンダーとして登録しています", False),
        ("うちの会社は支援事業者側なんだけど", False),
        ("自社が導入支援事業者の立場で社名を変えた", False),
        ("当社はソフトを売っているベンダーで、担当が替わった", False),
        ("当社は補助金を受け取った側です", True),  # the apposition names no sibling party
        ("弊社の所在地が変わりました。ITベンダーにも伝えますか", True),  # no apposition
        ("弊社は解約済みです", True),  # 解約 is no party
    ],
)
def test_a_self_reference_names_the_party_the_asker_says_it_is(
    policy: Policy, text: str, subsidised: bool
) -> None:
    analysis = policy.matcher.analyzer.analyze(text, negations=True)
    assert ("補助事業者" in analysis.full_terms) is subsidised


def test_a_vendor_speaking_of_its_own_company_is_not_answered_with_the_subsidised_companys_entry(
    policy: Policy,
) -> None:
    vendor = policy.decide("弊社はITベンダーです。営業担当が変更になったので登録情報を直したい")
    assert vendor.entry is None or vendor.entry.id != "it2020-applicant-info-change"
    assert any(c.entry_id == "it2020-vendor-info-change" for c in vendor.choices) or (
        vendor.entry is not None and vendor.entry.id == "it2020-vendor-info-change"
    )
    subsidised = policy.decide("弊社は補助事業者です。営業担当が変更になったので登録情報を直したい")
    assert subsidised.entry is not None and subsidised.entry.id == "it2020-applicant-info-change"


def test_a_mail_that_does_not_come_is_one_that_does_not_arrive(policy: Policy) -> None:
    """来る is a generic verb (a stop word), but of a mail it is 届く: 「メールが来ない」 asks for the
    receiving settings, not for the list of mails (faq/data/synonyms.toml)."""
    analysis = policy.matcher.analyzer.analyze("メールが来ない", negations=True)
    assert "届く" in analysis.full_terms
    for question in ("事務局からのメールが全く来ないのですが", "じむきょくのめーるがこないよ"):
        out = policy.decide(question)
        assert out.status == "answered" and out.entry is not None
        assert out.entry.id == "it2023-mail-domains", question


@pytest.mark.parametrize(
    "text", ["従業員はおりません", "ございますか", "提出してしまった", "書いておく", "やり方"]
)
def test_polite_and_auxiliary_grammar_ranks_but_is_not_counted(analyzer: Analyzer, text: str) -> None:
    """おります, ございます, 〜てしまう, 〜ておく and やり方 say how a question is put, in any FAQ
    (faq/text.py, NOT_COUNTED): none of them counts towards coverage."""
    grammar = [c for c in analyzer.analyze(text).concepts if c.key in NOT_COUNTED]
    assert grammar, text
    assert not any(c.countable for c in grammar)
