"""Retrieval and decision metrics over labelled queries.

SR@k and MRR@10 judge the ranking alone (is a correct entry among the first k);
no-match precision and recall judge the decision to say "not found"; the
wrong-answer rate counts the worst outcome, a confident answer from the wrong
entry.  Latency is per question, the whole decision included.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faq.loader import KBError, Problem, read_jsonl
from faq.policy import Outcome, Policy


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    gold_ids: tuple[str, ...]


def load_queries(path: Path) -> list[LabelledQuery]:
    """Read `{"query", "gold_ids"}` JSONL; KBError names the line of any bad row."""
    out: list[LabelledQuery] = []
    problems: list[Problem] = []
    for where, obj in read_jsonl(path, problems):
        if not isinstance(obj.get("query"), str):
            problems.append(Problem(where, None, "query", 'expected an object with a string "query"'))
            continue
        gold = obj.get("gold_ids", [])
        if not isinstance(gold, list) or not all(isinstance(g, str | int) for g in gold):
            problems.append(Problem(where, None, "gold_ids", "expected a list of entry ids"))
            continue
        out.append(LabelledQuery(obj["query"], tuple(str(g) for g in gold)))
    if not out and not problems:
        problems.append(Problem(str(path), None, None, "no queries"))
    if problems:
        raise KBError(problems)
    return out


@dataclass(frozen=True)
class Report:
    n: int
    n_in_scope: int
    n_out_of_scope: int
    sr1: float
    sr5: float
    mrr10: float
    answered_accuracy: float
    wrong_answer_rate: float
    nomatch_precision: float
    nomatch_recall: float
    p50_ms: float
    p99_ms: float
    misses: tuple[tuple[str, tuple[str, ...], str, tuple[str, ...]], ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "sr1": round(self.sr1, 4),
            "sr5": round(self.sr5, 4),
            "mrr10": round(self.mrr10, 4),
            "nomatch_precision": round(self.nomatch_precision, 4),
            "nomatch_recall": round(self.nomatch_recall, 4),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "n": self.n,
            "answered_accuracy": round(self.answered_accuracy, 4),
            "wrong_answer_rate": round(self.wrong_answer_rate, 4),
        }


def _ratio(num: int, den: int) -> float:
    return num / den if den else 1.0


def evaluate(policy: Policy, queries: Sequence[LabelledQuery]) -> Report:
    outcomes: list[Outcome] = []
    latencies: list[float] = []
    for q in queries:
        start = time.perf_counter()
        outcomes.append(policy.decide(q.query))
        latencies.append((time.perf_counter() - start) * 1000)
    sr1 = sr5 = 0
    rr = 0.0
    answered_right = answered_in_scope = wrong = 0
    said_nomatch = said_nomatch_right = 0
    misses: list[tuple[str, tuple[str, ...], str, tuple[str, ...]]] = []
    in_scope = [q for q in queries if q.gold_ids]
    for q, out in zip(queries, outcomes, strict=True):
        ranked = [c.entry.id for c in out.candidates]
        gold = set(q.gold_ids)
        if out.status == "no_match":
            said_nomatch += 1
            said_nomatch_right += not gold
        if out.status == "answered" and out.entry is not None:
            if out.entry.id in gold:
                answered_right += 1
            else:
                wrong += 1
        if not gold:
            if out.status != "no_match":
                misses.append((q.query, q.gold_ids, out.status, tuple(ranked[:3])))
            continue
        answered_in_scope += 1
        if ranked[:1] and ranked[0] in gold:
            sr1 += 1
        else:
            misses.append((q.query, q.gold_ids, out.status, tuple(ranked[:3])))
        if gold & set(ranked[:5]):
            sr5 += 1
        for rank, entry_id in enumerate(ranked[:10], start=1):
            if entry_id in gold:
                rr += 1 / rank
                break
    n_out = len(queries) - len(in_scope)
    lat = np.array(latencies) if latencies else np.zeros(1)
    return Report(
        n=len(queries),
        n_in_scope=len(in_scope),
        n_out_of_scope=n_out,
        sr1=_ratio(sr1, len(in_scope)),
        sr5=_ratio(sr5, len(in_scope)),
        mrr10=rr / len(in_scope) if in_scope else 1.0,
        answered_accuracy=_ratio(answered_right, answered_in_scope),
        wrong_answer_rate=_ratio(wrong, len(queries)) if queries else 0.0,
        nomatch_precision=_ratio(said_nomatch_right, said_nomatch),
        nomatch_recall=_ratio(said_nomatch_right, n_out),
        p50_ms=float(np.percentile(lat, 50)),
        p99_ms=float(np.percentile(lat, 99)),
        misses=tuple(misses),
    )


def fit_calibration(policy: Policy, queries: Sequence[LabelledQuery], steps: int = 5000) -> dict[str, float]:
    """Fit confidence = sigmoid(a·score + b·margin + c) to "the top entry is right".

    Out-of-scope questions count as wrong whatever ranks first, so the fitted
    confidence is the probability that showing the top entry would be correct.
    Plain logistic regression by gradient descent: three parameters need no library.
    """
    xs: list[tuple[float, float]] = []
    ys: list[float] = []
    for q in queries:
        candidates = policy.matcher.rank(q.query, k=2)
        if not candidates:
            continue
        score = candidates[0].score
        margin = score - (candidates[1].score if len(candidates) > 1 else 0.0)
        xs.append((score, margin))
        ys.append(1.0 if candidates[0].entry.id in q.gold_ids else 0.0)
    x = np.array(xs)
    y = np.array(ys)
    w = np.zeros(3)
    design = np.hstack([x, np.ones((len(x), 1))])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(design @ w)))
        w -= 0.5 * design.T @ (p - y) / len(y)
    p = 1 / (1 + np.exp(-(design @ w)))
    return {
        "a": float(w[0]),
        "b": float(w[1]),
        "c": float(w[2]),
        "brier": float(np.mean((p - y) ** 2)),
        "n": len(y),
    }
