"""Matching quality never slips below the level reached, on the dev set and on the sealed sets.

The floors live in tests/data/ratchet.json; raise them when the matcher or the
knowledge base improves (`kounen eval --queries ... --json` prints the figures).
The sealed sets' floors guard against regressions only: nothing is ever tuned on them.
`in_correct_or_offered` counts the in-scope questions answered right or not found with the right
entry offered to pick (`suggest_min`), so that answering more of them never lowers it.
`utility` is what the answering bar is fitted to (faq/data/policy.toml): answered correctly
minus three times answered wrongly, per question.  A change may trade a little of one share
for less of the other only when this does not fall.

Dev and the newest gate and honest sets have floors of their own. The older sealed sets are
held as one pool (`older`, its member sets listed in ratchet.json): their questions are
evaluated together, as one set, against one set of floors.  A floor per set of about 250
questions at its measured figure lets through only changes that lose no single answer
anywhere; the pool weighs a change by what users see over all the older questions
(BENCHMARKS.md, the seventeenth round, says why and what it gives up).
Latency is not checked here: BENCHMARKS.md measures it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faq import Policy
from faq.evaluate import LabelledQuery, evaluate, load_queries
from tests.bench.fit_bar import utility

DATA = Path(__file__).parent / "data"
FLOORS = json.loads((DATA / "ratchet.json").read_text(encoding="utf-8"))
POOL = "older"
QUALITY = ("utility", "in_correct", "out_refused", "sr1", "sr5", "mrr10", "ndcg10", "in_correct_or_offered")
CEILINGS = ("in_wrong", "out_wrong", "wrong_answer_rate")


def per_question(report: dict[str, object]) -> float:
    """The bar's criterion (tests/bench/fit_bar.py) per question, as the floors hold it."""
    n = float(report["n"])  # type: ignore[arg-type]
    return round(utility(report) / n, 4) if n else 0.0


def queries_of(name: str) -> list[LabelledQuery]:
    """One set's questions, or the pool's: every member set's questions, in the listed order."""
    if name == POOL:
        return [q for member in FLOORS[POOL]["sets"] for q in load_queries(DATA / f"{member}_queries.jsonl")]
    return load_queries(DATA / f"{name}_queries.jsonl")


def measure(policy: Policy, name: str) -> dict[str, object]:
    """The figures the floors hold, for one set or the pool."""
    measured = evaluate(policy, queries_of(name))
    report = measured.as_dict()
    report["utility"] = per_question(report)
    # Answered right, or not found with the right entry offered to pick: one tap from the answer.
    # Summed before rounding: a question moving from offered to answered must not lower it.
    report["in_correct_or_offered"] = round(measured.in_correct + measured.in_no_match_offered, 4)
    return report


def test_pool_and_own_floors_do_not_overlap() -> None:
    """A set is held either by its own floors or by the pool's, never by both or twice."""
    members = FLOORS[POOL]["sets"]
    assert len(members) == len(set(members)), "a set is listed twice in the pool"
    assert not set(members) & set(FLOORS), (
        f"sets with floors of their own and in the pool: {set(members) & set(FLOORS)}"
    )
    missing = [m for m in members if not (DATA / f"{m}_queries.jsonl").exists()]
    assert not missing, f"pool members without a query file: {missing}"


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_quality_at_or_above_floor(policy: Policy, name: str) -> None:
    report = measure(policy, name)
    floor = FLOORS[name]
    below = {k: (report[k], floor[k]) for k in QUALITY if k in floor and report[k] < floor[k]}
    assert not below, f"{name}: metric (now, floor) fell below the floor: {below}"
    above = {k: (report[k], floor[k]) for k in CEILINGS if k in floor and report[k] > floor[k]}
    assert not above, f"{name}: wrong answers (now, ceiling) rose above the ceiling: {above}"
