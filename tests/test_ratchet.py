"""Matching quality never slips below the level reached.

The floor lives in tests/data/ratchet.json; raise it when the matcher or the
knowledge base improves (`kounen eval --queries ... --json` prints the figures).
Latency is not checked here: BENCHMARKS.md measures it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faq import Policy
from faq.evaluate import evaluate, load_queries

DATA = Path(__file__).parent / "data"
FLOORS = json.loads((DATA / "ratchet.json").read_text(encoding="utf-8"))
QUALITY = ("sr1", "sr5", "mrr10", "nomatch_precision", "nomatch_recall", "answered_accuracy")


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_quality_at_or_above_floor(policy: Policy, name: str) -> None:
    report = evaluate(policy, load_queries(DATA / f"{name}_queries.jsonl")).as_dict()
    floor = FLOORS[name]
    below = {k: (report[k], floor[k]) for k in QUALITY if k in floor and report[k] < floor[k]}  # type: ignore[operator]
    assert not below, f"{name}: metric (now, floor) fell below the floor: {below}"
    assert report["wrong_answer_rate"] <= floor["wrong_answer_rate"], (
        f"{name}: wrong answers rose to {report['wrong_answer_rate']} (ceiling {floor['wrong_answer_rate']})"
    )
