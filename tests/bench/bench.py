"""`make bench` (`kounen bench`): our matcher against baselines and its predecessor, same queries, same run.

Tooling, not product: it lives in tests/bench so that faq/ holds only what the bot runs.
The same labelled questions go, in one process and on one machine, through
  * kounen    - `faq.Policy.decide`: coverage-based matching and decision;
  * previous  - the matcher and policy before coverage-based matching
                (tests/bench/previous_*.py, thresholds in previous_policy.toml);
  * rapidfuzz - `process.extract(query, texts, scorer=fuzz.WRatio)` over NFKC-normalised,
                lower-cased question wordings: what one line of fuzzy matching gives;
  * bm25s     - `bm25s.BM25()` over Sudachi normalized forms of each entry's question
                wordings + answer: what a developer would write in ten minutes.
The baselines index the same text kounen sees.  A baseline answers with its top entry,
or says "not found" when its best score is below a cutoff chosen, per baseline and
knowledge base, to maximise its own "not found" F1 on the dev queries.

Query sets: the dev set (tuned on) and the five sealed sets (never tuned on; see their headers).
Two knowledge bases: the project's own and the same entries padded with
`tests.bench.synthetic` entries to `size` (2,000 by default).

Every figure comes from `faq.evaluate.score`, from (ranked ids, verdict) pairs, so all
four matchers are judged by one definition; for kounen the run checks that it equals
`faq.evaluate.evaluate`.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import bm25s
import numpy as np
from rapidfuzz import fuzz, process

from faq.evaluate import LabelledQuery, Report, Verdict, evaluate, load_queries, score, verdict
from faq.loader import KnowledgeBase, load_kb
from faq.policy import Policy, Status
from faq.text import Analyzer, normalize
from tests.bench import previous_policy
from tests.bench.previous_matcher import Matcher as PreviousMatcher
from tests.bench.previous_text import Analyzer as PreviousAnalyzer
from tests.bench.synthetic import synthetic_entries

ROOT = Path(__file__).resolve().parents[2]
QUERY_FILES = {
    "dev": ROOT / "tests/data/dev_queries.jsonl",
    "sealed": ROOT / "tests/data/sealed_queries.jsonl",
    "sealed2": ROOT / "tests/data/sealed2_queries.jsonl",
    "sealed3": ROOT / "tests/data/sealed3_queries.jsonl",
    "sealed4": ROOT / "tests/data/sealed4_queries.jsonl",
    "sealed5": ROOT / "tests/data/sealed5_queries.jsonl",
    "sealed6": ROOT / "tests/data/sealed6_queries.jsonl",
    "sealed7": ROOT / "tests/data/sealed7_queries.jsonl",
}
RESULTS = (
    Path("bench-results") / "latest.md"
)  # relative to the working directory (`make bench` runs at the root)
K = 10
WARMUP_QUERIES = 20
STARTUP_RUNS = 5
STARTUP_QUESTION = "申請マイページのIDがわからない"
SEED = 0
T = TypeVar("T")

# The targets (see BENCHMARKS.md), judged on the sealed set.
TARGET_IN_CORRECT = 0.92
TARGET_IN_WRONG = 0.02
TARGET_OUT_REFUSED = 0.90
TARGET_P99_MS_PROJECT = 1.0
TARGET_P99_MS_LARGE = 5.0
TARGET_STARTUP_S = 1.5


@dataclass(frozen=True)
class Ranking:
    """What one matcher returned for one query, before any cutoff."""

    ids: tuple[str, ...]  # best entry first, at most K, no repeats
    top: float  # best score (the baselines' cutoff applies to it)
    status: Status | None  # the matcher's own decision; None for the baselines
    shown: tuple[str, ...] = ()  # the entries an "answered" decision shows (kounen: one or two)


class Engine:
    """A matcher under test: a name, how long its index took, and `run(query)`."""

    name = ""

    def __init__(self) -> None:
        self.build_s = 0.0
        self.cutoff: float | None = None  # baselines only: "not found" below this top score

    def run(self, query: str) -> Ranking:
        raise NotImplementedError

    def status(self, ranking: Ranking) -> Status:
        """The decision: kounen's own, or answered / no_match by the cutoff."""
        if ranking.status is not None:
            return ranking.status
        if not ranking.ids or (self.cutoff is not None and ranking.top < self.cutoff):
            return "no_match"
        return "answered"


def _timed(build: Callable[[], T]) -> tuple[T, float]:
    """The result of `build()` and the seconds it took."""
    start = time.perf_counter()
    built = build()
    return built, time.perf_counter() - start


def _plain(text: str) -> str:
    """The baselines' normalisation: NFKC and lower case, nothing language-specific."""
    return unicodedata.normalize("NFKC", text).lower()


def _variants(kb: KnowledgeBase) -> tuple[list[str], list[str], int]:
    """Every question and paraphrase, the entry id each belongs to, and the most variants of one entry."""
    texts: list[str] = []
    owners: list[str] = []
    most = 1
    for entry in kb.entries:
        variants = (entry.question, *entry.paraphrases)
        most = max(most, len(variants))
        texts.extend(variants)
        owners.extend([entry.id] * len(variants))
    return texts, owners, most


def _dedupe(hits: Sequence[tuple[int, float]], owners: Sequence[str]) -> tuple[tuple[str, ...], float]:
    """Variant hits (index, score), best first -> the first K distinct entries and the best score."""
    ids: list[str] = []
    for idx, hit_score in hits:
        if hit_score <= 0:
            break
        owner = owners[idx]
        if owner not in ids:
            ids.append(owner)
            if len(ids) == K:
                break
    return tuple(ids), (hits[0][1] if hits and hits[0][1] > 0 else 0.0)


class KounenEngine(Engine):
    name = "kounen"

    def __init__(self, kb: KnowledgeBase) -> None:
        super().__init__()
        self.policy, self.build_s = _timed(lambda: Policy(kb))

    def run(self, query: str) -> Ranking:
        outcome = self.policy.decide(query)
        cands = outcome.candidates
        return Ranking(
            tuple(c.entry.id for c in cands[:K]),
            cands[0].relevance if cands else 0.0,
            outcome.status,
            tuple(e.id for e in outcome.answers),
        )


class PreviousEngine(Engine):
    name = "previous"

    def __init__(self, kb: KnowledgeBase) -> None:
        super().__init__()
        self.policy, self.build_s = _timed(lambda: previous_policy.Policy(kb, PreviousMatcher(kb)))

    def run(self, query: str) -> Ranking:
        outcome = self.policy.decide(query)
        cands = outcome.candidates
        shown = (outcome.entry.id,) if outcome.entry is not None else ()
        return Ranking(
            tuple(c.entry.id for c in cands[:K]), cands[0].score if cands else 0.0, outcome.status, shown
        )


class FuzzEngine(Engine):
    name = "rapidfuzz"

    def __init__(self, kb: KnowledgeBase) -> None:
        super().__init__()
        texts, self.owners, most = _variants(kb)
        # Enough variant hits that K distinct entries survive de-duplication.
        self.limit = K * most
        self.texts, self.build_s = _timed(lambda: [_plain(t) for t in texts])

    def run(self, query: str) -> Ranking:
        hits = process.extract(_plain(query), self.texts, scorer=fuzz.WRatio, limit=self.limit)
        ids, top = _dedupe([(int(idx), float(score)) for _, score, idx in hits], self.owners)
        return Ranking(ids, top, None)


class BM25Engine(Engine):
    """bm25s over Sudachi normalized forms (split mode C, punctuation dropped) of question wordings + answer."""

    name = "bm25s"

    def __init__(self, kb: KnowledgeBase, analyzer: Analyzer) -> None:
        super().__init__()
        self._tok = analyzer._tok_c
        self.ids = [e.id for e in kb.entries]
        docs = [" ".join((e.question, *e.paraphrases, e.answer)) for e in kb.entries]
        self.retriever, self.build_s = _timed(lambda: self._index(docs))

    def tokens(self, text: str) -> list[str]:
        norm = normalize(text)
        return (
            [
                m.normalized_form()
                for m in self._tok.tokenize(norm)
                if m.part_of_speech()[0] not in ("補助記号", "空白")
            ]
            if norm
            else []
        )

    def _index(self, docs: Sequence[str]) -> Any:
        retriever = bm25s.BM25()
        retriever.index([self.tokens(d) for d in docs], show_progress=False)
        return retriever

    def run(self, query: str) -> Ranking:
        toks = self.tokens(query) or ["\u3000"]
        docs, scores = self.retriever.retrieve([toks], k=min(K, len(self.ids)), show_progress=False)
        hits = [(int(d), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]
        return Ranking(tuple(self.ids[d] for d, _ in hits), hits[0][1] if hits else 0.0, None)


# -- metrics -------------------------------------------------------------------


def verdicts_of(
    engine: Engine, queries: Sequence[LabelledQuery], rankings: Sequence[Ranking], programs: dict[str, str]
) -> list[Verdict]:
    """faq.evaluate's verdict for each question, from what the engine decided and showed."""
    out: list[Verdict] = []
    for q, r in zip(queries, rankings, strict=True):
        status = engine.status(r)
        shown = r.shown or (r.ids[:1] if status == "answered" else ())
        out.append(verdict(q, _Shown(status, shown, programs), programs))
    return out


class _Shown:
    """The slice of an Outcome that `faq.evaluate.verdict` reads."""

    def __init__(self, status: Status, shown: Sequence[str], programs: dict[str, str]) -> None:
        self.status = status
        self.answers = tuple(_Id(i) for i in shown)
        self.entry = self.answers[0] if self.answers else None


@dataclass(frozen=True)
class _Id:
    id: str


def choose_cutoff(queries: Sequence[LabelledQuery], rankings: Sequence[Ranking]) -> tuple[float, float]:
    """The top-score cutoff with the best no_match F1 on these (dev) queries, and that F1.

    Candidates are the midpoints between consecutive distinct top scores (and
    one below / above all), so the cutoff does not sit on a dev score; ties go
    to the lowest cutoff, i.e. the one that answers most.
    """
    tops = sorted({r.top for r in rankings})
    candidates = [tops[0] - 1.0, *((a + b) / 2 for a, b in pairwise(tops)), tops[-1] + 1.0]
    out_of_scope = [not q.gold_ids for q in queries]
    n_out = sum(out_of_scope)
    best = (candidates[0], -1.0)
    for cut in candidates:
        said = [not r.ids or r.top < cut for r in rankings]
        tp = sum(s and o for s, o in zip(said, out_of_scope, strict=True))
        precision = tp / sum(said) if any(said) else 0.0
        recall = tp / n_out if n_out else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        if f1 > best[1]:
            best = (cut, f1)
    return best


# -- measuring -----------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    rankings: list[Ranking]
    latencies_ms: list[float]  # per query: median of `repeat` runs


def measure(engine: Engine, queries: Sequence[LabelledQuery], repeat: int) -> Measured:
    """Each query `repeat` times; keep the first result and the median time (one slow run is not the query's cost)."""
    rankings: list[Ranking] = []
    latencies: list[float] = []
    for q in queries:
        times = []
        first: Ranking | None = None
        for _ in range(repeat):
            start = time.perf_counter()
            ranking = engine.run(q.query)
            times.append((time.perf_counter() - start) * 1000)
            first = first or ranking
        assert first is not None
        rankings.append(first)
        latencies.append(statistics.median(times))
    return Measured(rankings, latencies)


@dataclass(frozen=True)
class Row:
    setting: str
    n_entries: int
    query_set: str
    engine: str
    report: Report
    build_s: float
    cutoff: float | None
    cutoff_f1: float | None


@dataclass
class SettingResult:
    rows: list[Row]
    p99_all: dict[str, float]  # engine -> p99 over dev + holdout
    consistency: str


def run_setting(
    label: str, kb: KnowledgeBase, queries: dict[str, list[LabelledQuery]], repeat: int
) -> SettingResult:
    """Build the four engines over `kb`, measure every query set, set the baselines' cutoffs on dev."""
    _log(f"[{label}] building indexes over {len(kb.entries)} entries")
    analyzer = Analyzer()
    engines: list[Engine] = [KounenEngine(kb), PreviousEngine(kb), FuzzEngine(kb), BM25Engine(kb, analyzer)]
    programs = {e.id: e.program for e in kb.entries}
    warm = [q for qs in queries.values() for q in qs][:WARMUP_QUERIES]
    rows: list[Row] = []
    p99_all: dict[str, float] = {}
    consistency = "n/a"
    for engine in engines:
        _log(f"[{label}] {engine.name}: build {engine.build_s:.2f} s, measuring (repeat={repeat})")
        for q in warm:
            engine.run(q.query)
        measured = {name: measure(engine, qs, repeat) for name, qs in queries.items()}
        cutoff_f1: float | None = None
        if isinstance(engine, FuzzEngine | BM25Engine):
            engine.cutoff, cutoff_f1 = choose_cutoff(queries["dev"], measured["dev"].rankings)
        all_lat: list[float] = []
        for name, qs in queries.items():
            m = measured[name]
            verdicts = verdicts_of(engine, qs, m.rankings, programs)
            report = score(qs, [r.ids for r in m.rankings], verdicts, m.latencies_ms)
            rows.append(
                Row(
                    label,
                    len(kb.entries),
                    name,
                    engine.name,
                    report,
                    engine.build_s,
                    engine.cutoff,
                    cutoff_f1,
                )
            )
            all_lat.extend(m.latencies_ms)
            if isinstance(engine, KounenEngine):
                consistency = _check_against_evaluate(engine.policy, qs, report, consistency)
        p99_all[engine.name] = float(np.percentile(all_lat, 99))
    return SettingResult(rows, p99_all, consistency)


_QUALITY = (
    "in_correct",
    "in_wrong",
    "in_clarify",
    "in_no_match",
    "out_refused",
    "sr1",
    "sr5",
    "mrr10",
    "ndcg10",
)


def _check_against_evaluate(
    policy: Policy, queries: Sequence[LabelledQuery], ours: Report, previous: str
) -> str:
    """Our `score` for kounen must equal faq.evaluate.evaluate on the quality metrics."""
    theirs = evaluate(policy, queries)
    bad = [f for f in _QUALITY if abs((getattr(theirs, f) or 0.0) - (getattr(ours, f) or 0.0)) > 1e-9]
    if bad:
        return f"MISMATCH with faq.evaluate on {', '.join(bad)}"
    return previous if previous.startswith("MISMATCH") else "matches faq.evaluate"


def startup_times(runs: int = STARTUP_RUNS) -> list[float]:
    """Wall time of `kounen ask QUESTION` in a fresh process: import, KB load, index build, one answer."""
    exe = Path(sys.executable).parent / "kounen"
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([str(exe), "ask", STARTUP_QUESTION], capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(
                f"kounen ask failed ({done.returncode}): {done.stderr.decode(errors='replace')}"
            )
    return times


# Run `kounen ask` the way the console script does, and report the new process's own
# high-water RSS at exit.  RUSAGE_CHILDREN cannot be used: on Linux a child made by
# fork/vfork + exec inherits the parent's peak, so it would report this bench's size.
_RSS_PROBE = """\
import atexit, sys
def _hwm():
    with open("/proc/self/status") as fh:
        sys.stderr.write("\\n" + next(line for line in fh if line.startswith("VmHWM")))
atexit.register(_hwm)
sys.argv = ["kounen", "ask", sys.argv[1]]
from bot.cli import main
main()
"""


def startup_peak_rss_mb() -> float | None:
    """Peak RSS (MB) of one `kounen ask` process, or None where /proc is not available."""
    if not Path("/proc/self/status").exists():
        return None
    done = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, STARTUP_QUESTION], capture_output=True, check=False
    )
    lines = [ln for ln in done.stderr.decode(errors="replace").splitlines() if ln.startswith("VmHWM")]
    return int(lines[-1].split()[1]) / 1024 if lines else None


# -- report ----------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def render(
    results: list[SettingResult],
    startup: list[float],
    startup_rss_mb: float | None,
    repeat: int,
    n_project: int,
    n_large: int,
    elapsed_s: float,
    queries: dict[str, list[LabelledQuery]],
) -> str:
    """The Markdown written to stdout and bench-results/latest.md."""
    rows = [r for s in results for r in s.rows]
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    qdesc = ", ".join(
        f"{k} {len(v)} ({sum(not q.gold_ids for q in v)} out of scope)" for k, v in queries.items()
    )
    out = [
        "# kounen bench",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs.  Queries: {qdesc}.  Latency: each query {repeat}x after a warm-up, "
        f"per-query median, then percentiles.  Bench run took {elapsed_s:.0f} s.",
        "",
        f"Knowledge bases: **project** = faq/data ({n_project} entries); **{n_large:,}** = the project entries + "
        f"{n_large - n_project:,} `tests.bench.synthetic` entries (seed {SEED}).  Baseline cutoffs: the top score that "
        "maximises each baseline's own no_match F1 on dev, per knowledge base.",
        "",
    ]
    out += _table(
        [
            "KB",
            "queries",
            "matcher",
            "in: correct",
            "in: wrong",
            "in: asked back",
            "in: not found",
            "out: refused",
            "out: wrong",
            "SR@1",
            "SR@5",
            "MRR@10",
            "nDCG@10",
            "p50 ms",
            "p99 ms",
            "build s",
            "cutoff (dev F1)",
        ],
        [
            [
                r.setting,
                r.query_set,
                r.engine,
                _pct(r.report.in_correct),
                _pct(r.report.in_wrong),
                _pct(r.report.in_clarify),
                _pct(r.report.in_no_match),
                _pct(r.report.out_refused),
                _pct(r.report.out_wrong),
                _pct(r.report.sr1),
                _pct(r.report.sr5),
                f"{r.report.mrr10:.3f}",
                f"{r.report.ndcg10:.3f}" if r.report.ndcg10 is not None else "n/a",
                f"{r.report.p50_ms:.2f}",
                f"{r.report.p99_ms:.2f}",
                f"{r.build_s:.2f}",
                "policy" if r.cutoff is None else f"{r.cutoff:.2f} ({r.cutoff_f1:.2f})",
            ]
            for r in rows
        ],
    )

    def row(setting: str, qs: str, engine: str) -> Row:
        return next(r for r in rows if (r.setting, r.query_set, r.engine) == (setting, qs, engine))

    engines = [r.engine for r in results[0].rows if r.query_set == "dev"]
    targets: list[list[str]] = []
    checks: list[tuple[str, str, Callable[[Report], float], Callable[[float], bool], bool]] = [
        (
            f"in scope answered correctly ≥ {TARGET_IN_CORRECT:.0%}",
            "in_correct",
            lambda r: r.in_correct,
            lambda v: v >= TARGET_IN_CORRECT,
            True,
        ),
        (
            f"in scope answered wrongly ≤ {TARGET_IN_WRONG:.0%}",
            "in_wrong",
            lambda r: r.in_wrong,
            lambda v: v <= TARGET_IN_WRONG,
            True,
        ),
        (
            f"out of scope refused ≥ {TARGET_OUT_REFUSED:.0%}",
            "out_refused",
            lambda r: r.out_refused,
            lambda v: v >= TARGET_OUT_REFUSED,
            True,
        ),
    ]
    for res in results:
        setting = res.rows[0].setting
        for qs in queries:
            for title, _key, get, ok, pct in checks:
                cells = []
                for e in engines:
                    value = get(row(setting, qs, e).report)
                    cells.append(f"{_pct(value) if pct else value} {_verdict(ok(value))}")
                targets.append([f"{qs}: {title}", setting, *cells])
        limit = TARGET_P99_MS_PROJECT if setting == "project" else TARGET_P99_MS_LARGE
        targets.append(
            [f"p99 ≤ {limit:g} ms (all queries)", setting]
            + [f"{res.p99_all[e]:.2f} ms {_verdict(res.p99_all[e] <= limit)}" for e in engines]
        )
    median_start, max_start = statistics.median(startup), max(startup)
    targets.append(
        [
            f"start to first answer ≤ {TARGET_STARTUP_S:g} s (median of {len(startup)})",
            "project",
            f"{median_start:.2f} s {_verdict(median_start <= TARGET_STARTUP_S)}",
        ]
        + ["n/a"] * (len(engines) - 1)
    )
    out += ["", "## Targets", ""]
    out += _table(["target", "KB", *engines], targets)
    out += [
        "",
        "## Start-up and memory",
        "",
        f'- `kounen ask "{STARTUP_QUESTION}"` in a fresh process, {len(startup)} runs: median {median_start:.2f} s, '
        f"max {max_start:.2f} s (runs: {', '.join(f'{t:.2f}' for t in startup)}).",
        "- Peak RSS of one `kounen ask` process (project KB, VmHWM): "
        + (f"{startup_rss_mb:.0f} MB." if startup_rss_mb is not None else "n/a (no /proc)."),
        f"- Peak RSS of this bench process (both knowledge bases, all four matchers loaded): {rss_self:.0f} MB.",
        f"- kounen's quality figures above {results[0].consistency} (project KB) / {results[-1].consistency} "
        f"({results[-1].rows[0].setting} KB).",
        "",
    ]
    return "\n".join(out)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_bench(size: int, repeat: int) -> None:
    """Run everything, print the Markdown report and write it to bench-results/latest.md."""
    started = time.perf_counter()
    queries = {name: load_queries(path) for name, path in QUERY_FILES.items()}
    project = load_kb()
    if size <= len(project.entries):
        raise ValueError(f"--size must exceed the project's {len(project.entries)} entries")
    large = dataclasses.replace(
        project, entries=project.entries + tuple(synthetic_entries(size - len(project.entries), seed=SEED))
    )
    PreviousAnalyzer()
    Analyzer()  # load the Sudachi dictionary once, so no index build time includes it (start-up does)
    results = [
        run_setting("project", project, queries, repeat),
        run_setting(f"{len(large.entries):,}", large, queries, repeat),
    ]
    _log("measuring start to first answer")
    startup = startup_times()
    startup_rss = startup_peak_rss_mb()
    text = render(
        results,
        startup,
        startup_rss,
        repeat,
        len(project.entries),
        len(large.entries),
        time.perf_counter() - started,
        queries,
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n", encoding="utf-8")
    print(text)
    _log(f"written to {RESULTS}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run_bench(size=args.size, repeat=args.repeat)
