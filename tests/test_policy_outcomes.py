"""What the bot does for labelled questions (tests/data/outcome_cases.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from faq import KnowledgeBase, Policy

CASES_FILE = Path(__file__).parent / "data" / "outcome_cases.jsonl"


def _cases() -> list[Any]:
    params = []
    for lineno, line in enumerate(CASES_FILE.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        case = json.loads(line)
        # A case the matcher does not yet get right carries "known_gap": why.  It runs as a
        # strict xfail, so fixing the gap turns the test red until the note is removed.
        marks = [pytest.mark.xfail(reason=case["known_gap"], strict=True)] if "known_gap" in case else []
        params.append(pytest.param(case, id=f"L{lineno:02d}-{case['status']}", marks=marks))
    return params


def test_cases_file_is_sane(kb: KnowledgeBase) -> None:
    cases = [p.values[0] for p in _cases()]
    assert cases
    for case in cases:
        assert case["status"] in {"answered", "clarify", "no_match", "smalltalk", "dialog"}, case
        if case["status"] in {"answered", "clarify"}:
            assert case.get("gold_ids"), case
        for gold in case.get("gold_ids") or []:
            assert gold in kb.by_id, f"gold id {gold!r} is not in the knowledge base"


@pytest.mark.parametrize("case", _cases())
def test_outcome(policy: Policy, case: dict[str, Any]) -> None:
    outcome = policy.decide(case["query"])
    top = [(c.entry.id, round(c.score, 3)) for c in outcome.candidates[:3]]
    detail = f"{case['query']!r}: got {outcome.status} ({outcome.reason}), top {top}"
    assert outcome.status == case["status"], detail
    assert outcome.dialog == case.get("dialog"), detail
    gold = set(case.get("gold_ids") or [])
    if case["status"] == "answered":
        shown = [e.id for e in outcome.answers]
        assert outcome.entry is not None and shown and set(shown) <= gold, f"{detail}; answered {shown}"
    if case["status"] == "clarify":
        offered = [c.entry_id for c in outcome.choices]
        assert gold & set(offered), f"{detail}; offered {offered}, gold {sorted(gold)}"


@pytest.mark.parametrize(
    ("second_covers", "apart_min", "status"),
    [
        (0.80, 0.0, "answered"),  # covers less: told apart, the first is answered
        (0.80, 0.3, "clarify"),  # covers nearly as much: not told apart, asked back
        (0.60, 0.3, "answered"),  # covers clearly less (by more than apart_min): told apart
        (1.00, 0.0, "clarify"),  # covers as much: never told apart
    ],
)
def test_close_entries_are_told_apart_only_by_a_clear_coverage_gap(
    kb: KnowledgeBase, second_covers: float, apart_min: float, status: str
) -> None:
    """Two entries within the lead bar: the bot asks back unless the second covers the question's
    words clearly less than the first (policy.toml's `apart_min`)."""
    from faq.matcher import Candidate
    from faq.policy import PolicyConfig

    first, second = kb.entries[0], kb.entries[1]
    candidates = (
        Candidate(first, 0.9, (), relevance=10.0, question_coverage=1.0, wording_coverage=0.8),
        Candidate(second, 0.8, (), relevance=9.8, question_coverage=second_covers, wording_coverage=0.8),
    )
    policy = Policy(kb, config=PolicyConfig.load().model_copy(update={"apart_min": apart_min}))
    outcome = policy._from_candidates("質問", candidates, None, known=True)
    assert outcome.status == status, outcome.reason
    if status == "answered":
        assert [e.id for e in outcome.answers] == [first.id]
    else:
        assert {c.entry_id for c in outcome.choices} == {first.id, second.id}
