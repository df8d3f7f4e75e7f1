"""How the answering bar in faq/data/policy.toml is fitted: a sweep over the dev set only.

    .venv/bin/python -m tests.bench.fit_bar [--bars 0.62,0.64,...]
    .venv/bin/python -m tests.bench.fit_bar --suggest [--bars 0.30,0.35,...]
    .venv/bin/python -m tests.bench.fit_bar --setting apart_min --bars 0,0.1,0.2,...

For each bar it prints what users see on dev and `correct - 3 x wrong` (counts over all dev
questions), the criterion policy.toml names; --setting sweeps another of policy.toml's
settings by the same criterion (the bars then need giving).  With --suggest it sweeps the suggestion bar
instead (`suggest_min`): of the not-found replies that would offer entries, how many offer a
right one (helpful) and how many offer none (useless), and helpful - useless.  The sealed sets are never swept: they are run at
the end of a round (`kounen eval`), not used to choose.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

from faq import Policy
from faq.evaluate import LabelledQuery, evaluate, load_queries
from faq.loader import load_kb
from faq.policy import Outcome, PolicyConfig

DEV = Path(__file__).resolve().parents[1] / "data" / "dev_queries.jsonl"
WRONG_COST = 3  # a wrong answer costs three right ones (faq/data/policy.toml)


def utility(report: dict[str, object]) -> float:
    """answered correctly - WRONG_COST x answered wrongly, in questions."""
    correct = float(report["in_correct"]) * float(report["n_in_scope"])  # type: ignore[arg-type]
    wrong = float(report["wrong_answer_rate"]) * float(report["n"])  # type: ignore[arg-type]
    return correct - WRONG_COST * wrong


def _policies(setting: str, bars: list[float]) -> Iterator[tuple[float, Policy]]:
    """A policy for each value of one policy.toml setting, all over one matcher."""
    kb = load_kb()
    base = Policy(kb)
    for bar in bars:
        yield bar, Policy(kb, matcher=base.matcher, config=base.config.model_copy(update={setting: bar}))


def sweep(bars: list[float], setting: str = "coverage_min") -> list[tuple[float, dict[str, object]]]:
    queries = load_queries(DEV)
    return [(bar, evaluate(policy, queries).as_dict()) for bar, policy in _policies(setting, bars)]


def suggestion_counts(queries: list[LabelledQuery], outcomes: list[Outcome]) -> tuple[int, int, int]:
    """(not-found replies offering entries, offering a right one, in-scope not-found questions)."""
    shown = helpful = missed = 0
    for q, o in zip(queries, outcomes, strict=True):
        if o.status != "no_match":
            continue
        missed += q.in_scope
        if o.suggestions:
            shown += 1
            helpful += any(s.entry_id in q.gold_ids for s in o.suggestions)
    return shown, helpful, missed


def sweep_suggestions(bars: list[float]) -> list[tuple[float, tuple[int, int, int]]]:
    queries = load_queries(DEV)
    return [
        (bar, suggestion_counts(queries, [policy.decide(q.query) for q in queries]))
        for bar, policy in _policies("suggest_min", bars)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bars", default=None)
    parser.add_argument("--suggest", action="store_true", help="sweep suggest_min instead of coverage_min")
    parser.add_argument("--setting", default="coverage_min", help="the policy.toml setting to sweep")
    args = parser.parse_args()
    if args.setting not in PolicyConfig.model_fields:
        parser.error(
            f"--setting: policy.toml has no setting {args.setting!r} ({', '.join(PolicyConfig.model_fields)})"
        )
    if args.setting != "coverage_min" and not args.bars:
        parser.error("--setting: give the values to sweep with --bars")
    try:
        given = [float(b) for b in args.bars.split(",")] if args.bars else None
    except ValueError:
        parser.error(f"--bars: expected numbers separated by commas, got {args.bars!r}")
    if args.suggest:
        bars = given or [0.30, 0.35, 0.40, 0.425, 0.45, 0.475, 0.50, 0.55, 0.60]
        print(
            "| suggest_min | not found, offering entries | offering a right one | offering none | helpful − useless |"
        )
        print("|---|---|---|---|---|")
        for bar, (shown, helpful, missed) in sweep_suggestions(bars):
            print(
                f"| {bar:.3f} | {shown} | {helpful} (of {missed} in-scope not found) | {shown - helpful} | {2 * helpful - shown} |"
            )
        return
    bars = given or [0.62, 0.64, 0.66, 0.68, 0.69, 0.70, 0.71, 0.72, 0.74, 0.76, 0.78]
    print(
        f"| {args.setting} | in: correct | in: wrong | in: asked back | out: refused | all: wrong | correct − 3×wrong |"
    )
    print("|---|---|---|---|---|---|---|")
    for bar, r in sweep(bars, args.setting):
        print(
            f"| {bar:.2f} | {float(r['in_correct']):.1%} | {float(r['in_wrong']):.1%} | "  # type: ignore[arg-type]
            f"{float(r['in_clarify']):.1%} | "  # type: ignore[arg-type]
            f"{float(r['out_refused']):.1%} | {float(r['wrong_answer_rate']):.1%} | {utility(r):.0f} |"  # type: ignore[arg-type]
        )


if __name__ == "__main__":
    main()
