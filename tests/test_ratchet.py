"""Matching quality never slips below the level reached, on the dev set and on the sealed set.

The floors live in tests/data/ratchet.json; raise them when the matcher or the
knowledge base improves (`kounen eval --queries ... --json` prints the figures).
The sealed sets' floors guard against regressions only: nothing is ever tuned on them.
`in_correct_or_offered` counts the in-scope questions answered right or not found with the right
entry offered to pick (`suggest_min`), so that answering more of them never lowers it.
`utility` is what the answering bar is fitted to (faq/data/policy.toml): answered correctly
minus three times answered wrongly, per question.  A change may trade a little of one share
for less of the other only when this does not fall.
Latency is not checked here: BENCHMARKS.md measures it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faq import Policy
from faq.evaluate import evaluate, load_queries
from tests.bench.fit_bar import utility

DATA = Path(__file__).parent / "data"
FLOORS = json.loads((DATA / "ratchet.json").read_text(encoding="utf-8"))
QUALITY = ("utility", "in_correct", "out_refused", "sr1", "sr5", "mrr10", "ndcg10", "in_correct_or_offered")


def per_question(report: dict[str, object]) -> float:
    """The bar's criterion (tests/bench/fit_bar.py) per question, as the floors hold it."""
    n = float(report["n"])  # type: ignore[arg-type]
    return round(utility(report) / n, 4) if n else 0.0


CEILINGS = ("in_wrong", "out_wrong", "wrong_answer_rate")


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_quality_at_or_above_floor(policy: Policy, name: str) -> None:
    measured = evaluate(policy, load_queries(DATA / f"{name}_queries.jsonl"))
    report = measured.as_dict()
    report["utility"] = per_question(report)
    # Answered right, or not found with the right entry offered to pick: one tap from the answer.
    # Summed before rounding: a question moving from offered to answered must not lower it.
    report["in_correct_or_offered"] = round(measured.in_correct + measured.in_no_match_offered, 4)
    floor = FLOORS[name]
    below = {k: (report[k], floor[k]) for k in QUALITY if k in floor and report[k] < floor[k]}  # type: ignore[operator]
    assert not below, f"{name}: metric (now, floor) fell below the floor: {below}"
    above = {k: (report[k], floor[k]) for k in CEILINGS if k in floor and report[k] > floor[k]}  # type: ignore[operator]
    assert not above, f"{name}: wrong answers (now, ceiling) rose above the ceiling: {above}"
