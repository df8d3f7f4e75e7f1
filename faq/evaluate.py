"""What users see, and how well the ranking does, over labelled questions.

Headline: shares of in-scope and of out-of-scope questions that were
  * answered correctly - in scope: the bot answered (status `answered`), every answer it
    showed is a gold entry, and every program among the gold entries has one of its
    entries among those shown (a question naming no program on a topic both programs
    answer is labelled with both programs' entries, and the bot must show both side by
    side).  Out of scope: never counted correct (see "not found");
  * answered wrongly - the bot answered and at least one answer shown is not gold, or a
    gold program's answer is missing (`partial` counts those too); for out-of-scope
    questions, any answer;
  * asked back - status `clarify`;
  * not found - status `no_match` (for out-of-scope questions this is the right outcome,
    reported as "refused").
Small talk and dialog starts count as "other".

Beside them, the ranking alone: SR@1 and SR@5 (a gold entry among the first k), MRR@10;
and with graded labels (`"gold": {"ID": 2, "ID2": 1}`), nDCG@10 and Recall@10 computed as
public retrieval leaderboards do (gain = grade / log2(rank + 1), ideal DCG from the
labels; Recall@10 = share of entries with grade > 0 found in the first 10).
Latency is per question, the whole decision included.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faq.loader import KBError, Problem, read_jsonl
from faq.policy import Outcome, Policy


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    gold_ids: tuple[str, ...]
    grades: dict[str, int] = field(default_factory=dict)  # graded relevance, when labelled

    @property
    def in_scope(self) -> bool:
        return bool(self.gold_ids)


def load_queries(path: Path) -> list[LabelledQuery]:
    """Read `{"query", "gold_ids", "gold"?}` JSONL (`#` lines are comments); KBError names the line of a bad row."""
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
        graded = obj.get("gold", {})
        if not isinstance(graded, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in graded.values()
        ):
            problems.append(
                Problem(where, None, "gold", 'expected an object {"entry id": grade (0, 1, 2, ...)}')
            )
            continue
        ids = tuple(str(g) for g in gold)
        grades = {str(k): int(v) for k, v in graded.items()}
        if not grades and ids:
            grades = dict.fromkeys(ids, 1)
        if "gold_ids" not in obj and grades:
            # Graded labels only (a public benchmark): the top grade is what answers.  A row that
            # says `"gold_ids": []` says nothing answers it (out of scope), whatever it grades as
            # related.
            top = max(grades.values())
            ids = tuple(k for k, v in grades.items() if v == top and v > 0)
        out.append(LabelledQuery(obj["query"], ids, grades))
    if not out and not problems:
        problems.append(Problem(str(path), None, None, "no queries"))
    if problems:
        raise KBError(problems)
    return out


def dcg(grades: Sequence[float]) -> float:
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(grades, start=1))


def ndcg_at(ranked: Sequence[str], grades: dict[str, int], k: int = 10) -> float:
    ideal = dcg(sorted(grades.values(), reverse=True)[:k])
    if ideal <= 0:
        return 0.0
    return dcg([grades.get(i, 0) for i in ranked[:k]]) / ideal


def recall_at(ranked: Sequence[str], grades: dict[str, int], k: int = 10) -> float:
    relevant = {i for i, g in grades.items() if g > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


Verdict = str  # "correct" | "wrong" | "partial" | "clarify" | "no_match" | "other"


def verdict(q: LabelledQuery, out: Outcome, programs: Mapping[str, str] | None = None) -> Verdict:
    """What the user saw for one question, judged against its labels (see the module docstring).

    `programs` maps entry id to program; without it every gold entry must be shown.
    """
    if out.status == "clarify":
        return "clarify"
    if out.status == "no_match":
        return "no_match"
    if out.status != "answered":
        return "other"
    shown = [e.id for e in out.answers] or ([out.entry.id] if out.entry else [])
    gold = set(q.gold_ids)
    if not gold or not shown or any(i not in gold for i in shown):
        return "wrong"
    if programs is None:
        return "correct"
    needed = {programs.get(g, g) for g in gold}
    got = {programs.get(i, i) for i in shown}
    return "correct" if needed <= got else "partial"


@dataclass(frozen=True)
class Report:
    n: int
    n_in_scope: int
    n_out_of_scope: int
    in_correct: float
    in_wrong: float
    in_partial: float
    in_clarify: float
    in_no_match: float
    out_refused: float
    out_wrong: float
    out_clarify: float
    sr1: float
    sr5: float
    mrr10: float
    ndcg10: float | None
    recall10: float | None
    wrong_answer_rate: float
    p50_ms: float
    p99_ms: float
    misses: tuple[tuple[str, tuple[str, ...], str, tuple[str, ...]], ...]
    # Under a "not found", entries offered to pick (faq/data/policy.toml `suggest_min`): the
    # share of in-scope questions not found whose offer holds a right entry, and of
    # out-of-scope questions refused with an offer (useless to them, but under an honest refusal).
    in_no_match_offered: float = 0.0
    out_refused_offered: float = 0.0

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "n": self.n,
            "n_in_scope": self.n_in_scope,
            "n_out_of_scope": self.n_out_of_scope,
            "in_correct": round(self.in_correct, 4),
            "in_wrong": round(self.in_wrong, 4),
            "in_partial": round(self.in_partial, 4),
            "in_clarify": round(self.in_clarify, 4),
            "in_no_match": round(self.in_no_match, 4),
            "out_refused": round(self.out_refused, 4),
            "in_no_match_offered": round(self.in_no_match_offered, 4),
            "out_refused_offered": round(self.out_refused_offered, 4),
            "out_wrong": round(self.out_wrong, 4),
            "out_clarify": round(self.out_clarify, 4),
            "wrong_answer_rate": round(self.wrong_answer_rate, 4),
            "sr1": round(self.sr1, 4),
            "sr5": round(self.sr5, 4),
            "mrr10": round(self.mrr10, 4),
        }
        if self.ndcg10 is not None and self.recall10 is not None:
            out["ndcg10"] = round(self.ndcg10, 4)
            out["recall10"] = round(self.recall10, 4)
        out["p50_ms"] = round(self.p50_ms, 3)
        out["p99_ms"] = round(self.p99_ms, 3)
        return out


def _share(num: int, den: int) -> float:
    return num / den if den else 0.0


def score(
    queries: Sequence[LabelledQuery],
    ranked: Sequence[Sequence[str]],
    verdicts: Sequence[Verdict],
    latencies_ms: Sequence[float] = (),
    graded: bool | None = None,
    offered: Sequence[Sequence[str]] = (),
) -> Report:
    """The report from each question's ranked ids and verdict (shared with the benchmark's baselines)."""
    in_scope = [i for i, q in enumerate(queries) if q.in_scope]
    out_scope = [i for i, q in enumerate(queries) if not q.in_scope]

    def count(idx: Sequence[int], *kinds: str) -> int:
        return sum(1 for i in idx if verdicts[i] in kinds)

    sr1 = sr5 = 0
    rr = 0.0
    ndcg = rec = 0.0
    misses: list[tuple[str, tuple[str, ...], str, tuple[str, ...]]] = []
    for i, q in enumerate(queries):
        ids = list(ranked[i])
        if not q.in_scope:
            if verdicts[i] != "no_match":
                misses.append((q.query, q.gold_ids, verdicts[i], tuple(ids[:3])))
            continue
        gold = set(q.gold_ids)
        if ids[:1] and ids[0] in gold:
            sr1 += 1
        if verdicts[i] != "correct":
            misses.append((q.query, q.gold_ids, verdicts[i], tuple(ids[:3])))
        sr5 += bool(gold & set(ids[:5]))
        rr += next((1 / r for r, e in enumerate(ids[:10], start=1) if e in gold), 0.0)
        ndcg += ndcg_at(ids, q.grades)
        rec += recall_at(ids, q.grades)
    n_in = len(in_scope)
    has_grades = graded if graded is not None else any(q.grades for q in queries)
    lat = np.array(latencies_ms) if len(latencies_ms) else np.zeros(1)
    wrong = count(in_scope, "wrong", "partial") + count(out_scope, "wrong", "partial")
    offers = list(offered) or [()] * len(queries)
    in_offered = sum(
        1 for i in in_scope if verdicts[i] == "no_match" and set(offers[i]) & set(queries[i].gold_ids)
    )
    out_offered = sum(1 for i in out_scope if verdicts[i] == "no_match" and offers[i])
    return Report(
        n=len(queries),
        n_in_scope=n_in,
        n_out_of_scope=len(out_scope),
        in_correct=_share(count(in_scope, "correct"), n_in),
        in_wrong=_share(count(in_scope, "wrong", "partial"), n_in),
        in_partial=_share(count(in_scope, "partial"), n_in),
        in_clarify=_share(count(in_scope, "clarify"), n_in),
        in_no_match=_share(count(in_scope, "no_match"), n_in),
        out_refused=_share(count(out_scope, "no_match"), len(out_scope)),
        out_wrong=_share(count(out_scope, "wrong", "partial"), len(out_scope)),
        out_clarify=_share(count(out_scope, "clarify"), len(out_scope)),
        sr1=_share(sr1, n_in),
        sr5=_share(sr5, n_in),
        mrr10=rr / n_in if n_in else 0.0,
        ndcg10=ndcg / n_in if has_grades and n_in else None,
        recall10=rec / n_in if has_grades and n_in else None,
        wrong_answer_rate=_share(wrong, len(queries)),
        p50_ms=float(np.percentile(lat, 50)),
        p99_ms=float(np.percentile(lat, 99)),
        misses=tuple(misses),
        in_no_match_offered=_share(in_offered, n_in),
        out_refused_offered=_share(out_offered, len(out_scope)),
    )


def evaluate(policy: Policy, queries: Sequence[LabelledQuery]) -> Report:
    outcomes: list[Outcome] = []
    latencies: list[float] = []
    for q in queries:
        start = time.perf_counter()
        outcomes.append(policy.decide(q.query))
        latencies.append((time.perf_counter() - start) * 1000)
    programs = {e.id: e.program for e in policy.kb.entries}
    verdicts = [verdict(q, o, programs) for q, o in zip(queries, outcomes, strict=True)]
    ranked = [[c.entry.id for c in o.candidates] for o in outcomes]
    offered = [[s.entry_id for s in o.suggestions if s.entry_id] for o in outcomes]
    return score(queries, ranked, verdicts, latencies, offered=offered)
