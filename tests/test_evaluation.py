"""The evaluation, the confidence formula and the benchmark code, tested on their own.

A metric that is silently wrong makes every figure in BENCHMARKS.md wrong, so each
definition is pinned here on small hand-made cases whose answers are known.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from faq import KnowledgeBase, Policy
from faq.evaluate import LabelledQuery, evaluate, load_queries, ndcg_at, recall_at, score, verdict
from faq.policy import confidence, lead_of
from tests.bench import bench

PROGRAMS = {"a20": "it2020", "b20": "it2020", "a23": "it2023-multi"}


def _out(status: str, *shown: str) -> Any:
    answers = tuple(SimpleNamespace(id=i) for i in shown)
    return SimpleNamespace(status=status, answers=answers, entry=answers[0] if answers else None)


@pytest.mark.parametrize(
    ("gold", "status", "shown", "expected"),
    [
        (("a20",), "answered", ("a20",), "correct"),
        (("a20",), "answered", ("b20",), "wrong"),
        # Both programs answer and no program was named: both must be shown.
        (("a20", "a23"), "answered", ("a20", "a23"), "correct"),
        (("a20", "a23"), "answered", ("a20",), "partial"),
        (("a20", "a23"), "answered", ("a20", "b20"), "wrong"),
        # Several entries of one program answer: any one of them is right.
        (("a20", "b20"), "answered", ("b20",), "correct"),
        (("a20",), "clarify", (), "clarify"),
        (("a20",), "no_match", (), "no_match"),
        ((), "answered", ("a20",), "wrong"),
        ((), "no_match", (), "no_match"),
    ],
)
def test_verdict(gold: tuple[str, ...], status: str, shown: tuple[str, ...], expected: str) -> None:
    q = LabelledQuery("q", gold, dict.fromkeys(gold, 2))
    assert verdict(q, _out(status, *shown), PROGRAMS) == expected


def test_ndcg_and_recall_as_leaderboards_compute_them() -> None:
    grades = {"x": 2, "y": 1}
    assert ndcg_at(["x", "y"], grades) == pytest.approx(1.0)
    # y first, x second: (1/log2(2) + 2/log2(3)) / (2/log2(2) + 1/log2(3))
    expected = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert ndcg_at(["y", "x"], grades) == pytest.approx(expected)
    assert ndcg_at(["z"], grades) == 0.0
    assert recall_at(["z", "y"], grades) == pytest.approx(0.5)
    assert ndcg_at(["x"] + ["z"] * 10 + ["y"], grades, k=10) == pytest.approx(2 / (2 + 1 / math.log2(3)))


def test_score_splits_in_scope_and_out_of_scope() -> None:
    queries = [
        LabelledQuery("q1", ("a",), {"a": 2}),
        LabelledQuery("q2", ("b",), {"b": 2}),
        LabelledQuery("q3", ("c",), {"c": 2}),
        LabelledQuery("q4", ("d",), {"d": 2}),
        LabelledQuery("o1", ()),
        LabelledQuery("o2", ()),
    ]
    ranked = [["a"], ["x", "b"], ["c"], [], ["a"], []]
    verdicts = ["correct", "wrong", "clarify", "no_match", "wrong", "no_match"]
    r = score(queries, ranked, verdicts)
    assert (r.in_correct, r.in_wrong, r.in_clarify, r.in_no_match) == (0.25, 0.25, 0.25, 0.25)
    assert (r.out_refused, r.out_wrong) == (0.5, 0.5)
    assert r.sr1 == 0.5 and r.sr5 == 0.75
    assert r.mrr10 == pytest.approx((1 + 0.5 + 1 + 0) / 4)
    assert r.wrong_answer_rate == pytest.approx(2 / 6)


def test_confidence_grows_with_coverage_and_lead() -> None:
    # Flipping the sign of either term must break this test.
    assert confidence(0.9, 0.2, 0.1) > confidence(0.6, 0.2, 0.1)
    assert confidence(0.9, 0.08, 0.1) > confidence(0.9, 0.02, 0.1)
    assert confidence(0.9, 0.5, 0.1) == pytest.approx(0.9)
    assert confidence(0.9, 0.0, 0.1) == 0.0
    assert lead_of(10.0, 8.0) == pytest.approx(0.2)
    assert lead_of(0.0, 0.0) == 0.0


def test_decide_reports_confidence_that_follows_the_lead(policy: Policy) -> None:
    clear = policy.decide("申請マイページのログインIDを忘れた")
    assert clear.status == "answered" and 0.0 < clear.confidence <= 1.0


def test_a_question_naming_one_program_by_its_vocabulary_gets_that_programs_answer_alone(
    policy: Policy,
) -> None:
    # 効果報告 is said by most 2023 entries and by no 2020 one: a contact question about it is
    # about the 2023 line, not both lines side by side.
    outcome = policy.decide("効果報告の問い合わせ先の電話番号")
    assert outcome.status == "answered"
    assert [e.id for e in outcome.answers] == ["it2023-contact"]
    assert outcome.program is None  # not remembered: the question did not name the program


def test_a_word_few_entries_mention_names_no_program(policy: Policy) -> None:
    # 勤怠 is in the 2023 guide only, but as a kind of tool two of its 48 entries mention; a
    # cancellation of a 勤怠 tool still gets both programs' rules.
    matcher = policy.matcher
    share = policy.config.vocabulary_min
    query = "勤怠ソフトを入れて3か月で解約したい、手続きは？"
    assert matcher.question_programs(matcher.prepare(matcher.analyzer.analyze(query)), share) == {}
    outcome = policy.decide(query)
    assert {e.program for e in outcome.answers} == {"it2020", "it2023-multi"}
    portal = matcher.prepare(matcher.analyzer.analyze("IT事業者ポータル"))
    assert set(matcher.question_programs(portal, share)) == {"it2020"}


def test_a_refund_on_withdrawal_shows_the_2020_cancellation_but_not_the_other_way(policy: Policy) -> None:
    # The 2020 FAQ answers a refund on 辞退 with its cancellation entries (cancelling is 辞退
    # there), so they are shown beside the 2023 refund entry (`beside`).  A 2020 cancellation's
    # 2023 answer is the entry that says cancelling is 辞退; the refund entry never says so.
    refund = policy.decide("辞退したら補助金は全額返さないといけませんか")
    assert refund.status == "answered"
    shown = [e.id for e in refund.answers]
    assert shown[0] == "it2023-refund-on-withdrawal"
    assert any(i.startswith("it2020-cancel-") for i in shown[1:]), shown
    cancel = policy.decide("1年たたずに解約したら補助金は返すの？")
    assert [e.id for e in cancel.answers] == ["it2020-cancel-within-year", "it2023-withdrawal-triggers"]


def test_entries_too_close_to_tell_apart_are_told_apart_by_coverage(policy: Policy) -> None:
    # The partial cancellation ranks first on the words a general cancellation question shares
    # with it, but only the general entry's wording is said whole: it is the answer, and the
    # ranking the matcher made is left as it was (SR@1 and nDCG measure the ranking).
    outcome = policy.decide("ITツール 解約 辞退届")
    first, *_ = outcome.candidates
    assert first.entry.id == "it2020-cancel-partial"
    assert outcome.status == "answered" and outcome.entry is not None
    assert outcome.entry.id == "it2023-withdrawal-triggers"
    chosen = next(c for c in outcome.candidates if c.entry.id == outcome.entry.id)
    assert chosen.coverage > first.coverage
    assert {e.program for e in outcome.answers} == {"it2020", "it2023-multi"}
    assert "it2020-cancel-partial" not in {e.id for e in outcome.answers}


def test_graded_labels_and_comment_lines_are_read(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        "# a header line\n"
        + json.dumps({"query": "a", "gold": {"1": 2, "2": 1}})
        + "\n"
        + json.dumps({"query": "b", "gold_ids": ["3"]})
        + "\n",
        encoding="utf-8",
    )
    first, second = load_queries(path)
    assert first.gold_ids == ("1",) and first.grades == {"1": 2, "2": 1}
    assert second.gold_ids == ("3",) and second.grades == {"3": 1}


def test_an_empty_gold_ids_stays_out_of_scope_whatever_it_grades_as_related(tmp_path: Path) -> None:
    """`"gold_ids": []` with a related entry graded 1: nothing answers it, so it is out of scope
    (only a row without gold_ids, as public benchmarks write them, takes its top grade as gold)."""
    path = tmp_path / "q.jsonl"
    rows = [{"query": "a", "gold_ids": [], "gold": {"1": 1}}, {"query": "b", "gold": {"1": 1}}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    related_only, public = load_queries(path)
    assert related_only.gold_ids == () and not related_only.in_scope and related_only.grades == {"1": 1}
    assert public.gold_ids == ("1",) and public.in_scope


def test_eval_runs_on_any_graded_public_style_set(tmp_path: Path) -> None:
    """`kounen eval --kb other.jsonl --queries q.jsonl` with graded labels: nDCG@10 and Recall@10."""
    from typer.testing import CliRunner

    from bot.cli import app

    kb = tmp_path / "kb.jsonl"
    rows = [
        {"id": 1, "question": "粗大ごみの出し方を教えてください", "answer": "粗大ごみは予約制です。"},
        {"id": 2, "question": "住民票の写しはどこで取れますか", "answer": "市民課の窓口で交付します。"},
        {"id": 3, "question": "児童手当の申請方法", "answer": "子育て支援課に申請書を出してください。"},
        {"id": 4, "question": "図書館の開館時間は", "answer": "午前9時から午後7時までです。"},
    ]
    kb.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    queries = tmp_path / "q.jsonl"
    labelled = [
        {"query": "粗大ごみを捨てたい", "gold": {"1": 2}},
        {"query": "住民票が欲しい", "gold": {"2": 2, "3": 1}},
        {"query": "児童手当の申請", "gold": {"3": 2}},
        {"query": "ラーメンのおいしい店", "gold": {}},
    ]
    queries.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in labelled), encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", "--kb", str(kb), "--queries", str(queries), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_in_scope"] == 3 and report["n_out_of_scope"] == 1
    assert 0.0 < report["ndcg10"] <= 1.0 and 0.0 < report["recall10"] <= 1.0
    assert report["sr1"] == 1.0


# -- the benchmark code ------------------------------------------------------------------


def test_bench_engines_agree_with_evaluate_on_dev_questions(kb: KnowledgeBase) -> None:
    dev = load_queries(bench.QUERY_FILES["dev"])[::8]  # a sample of the dev set (never the sealed set)
    programs = {e.id: e.program for e in kb.entries}
    kounen = bench.KounenEngine(kb)
    measured = bench.measure(kounen, dev, repeat=1)
    ours = score(
        dev, [r.ids for r in measured.rankings], bench.verdicts_of(kounen, dev, measured.rankings, programs)
    )
    theirs = evaluate(kounen.policy, dev)
    for key in ("in_correct", "in_wrong", "in_clarify", "in_no_match", "out_refused", "sr1", "mrr10"):
        assert getattr(ours, key) == pytest.approx(getattr(theirs, key)), key
    for engine in (
        bench.PreviousEngine(kb),
        bench.FuzzEngine(kb),
        bench.BM25Engine(kb, kounen.policy.matcher.analyzer),
    ):
        ranking = engine.run("申請マイページのIDがわからない")
        assert ranking.ids and len(set(ranking.ids)) == len(ranking.ids), engine.name
        assert all(i in kb.by_id for i in ranking.ids), engine.name


def test_choose_cutoff_maximises_not_found_f1() -> None:
    queries = [
        LabelledQuery("a", ("x",)),
        LabelledQuery("b", ("x",)),
        LabelledQuery("c", ()),
        LabelledQuery("d", ()),
    ]
    rankings = [bench.Ranking(("x",), top, None) for top in (9.0, 8.0, 2.0, 1.0)]
    cut, f1 = bench.choose_cutoff(queries, rankings)
    assert 2.0 < cut <= 8.0 and f1 == 1.0


def test_the_bar_fitting_criterion_counts_a_wrong_answer_as_three() -> None:
    from tests.bench.fit_bar import utility

    report: dict[str, object] = {"in_correct": 0.5, "n_in_scope": 100, "wrong_answer_rate": 0.1, "n": 150}
    assert utility(report) == 50 - 3 * 15


def test_offered_entries_count_only_under_a_not_found() -> None:
    # In scope: offered the right entry (counts), offered a wrong one, answered (an offer there
    # is not shown); out of scope: refused with an offer, refused without.
    queries = [
        LabelledQuery("q1", ("a",), {"a": 2}),
        LabelledQuery("q2", ("b",), {"b": 2}),
        LabelledQuery("q3", ("c",), {"c": 2}),
        LabelledQuery("o1", ()),
        LabelledQuery("o2", ()),
    ]
    verdicts = ["no_match", "no_match", "correct", "no_match", "no_match"]
    offered = [["x", "a"], ["x"], ["c"], ["a"], []]
    r = score(queries, [[], [], ["c"], [], []], verdicts, offered=offered)
    assert r.in_no_match_offered == pytest.approx(1 / 3)
    assert r.out_refused_offered == pytest.approx(1 / 2)


def test_the_suggestion_criterion_counts_offers_under_a_not_found(kb: KnowledgeBase) -> None:
    from faq.policy import Choice
    from tests.bench.fit_bar import suggestion_counts

    queries = [LabelledQuery("q1", ("a",), {"a": 2}), LabelledQuery("o1", ()), LabelledQuery("q2", ("b",))]
    outcomes: list[Any] = [
        SimpleNamespace(status="no_match", suggestions=(Choice("A", "a"),)),
        SimpleNamespace(status="no_match", suggestions=(Choice("A", "a"),)),
        SimpleNamespace(status="no_match", suggestions=()),
    ]
    assert suggestion_counts(queries, outcomes) == (2, 1, 2)
