"""うち is a word of the subject only when it means "among" (faq/text.py, `_speakers_or_while`).

「うちの会社で入れたツールを解約したい」 is a cancellation, not a partial one: its うち is the asker's
company.  「3つのうち1つだけ解約」 is the partial one.  The dictionary gives one form for both, so
the analyzer reads which one it is from what comes before it, for any FAQ.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import plain_faq_policy

from faq.text import Analyzer


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
