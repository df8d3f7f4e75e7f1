"""`kounen bench`: our matcher against two plain baselines, same queries, same run.

Why a bench and not only `kounen eval`: a figure for our matcher alone says
nothing about whether its complexity (Sudachi, synonyms, readings, a decision
policy) earns its keep.  So the same labelled questions go, in one process and
on one machine, through
  * kounen    - `Policy.decide` (ranking = Outcome.candidates, decision = Outcome.status);
  * rapidfuzz - `process.extract(query, texts, scorer=fuzz.WRatio)` over NFKC-normalised,
                lower-cased question texts: what one line of fuzzy matching gives;
  * bm25s     - BM25 over character bigrams of the same normalised text: the
                textbook language-independent retrieval baseline.
Both baselines index each entry's question *and* its paraphrases (mapped back
to the entry), exactly the text kounen sees, so the comparison is about the
method and not about who was given more data.  A baseline says "not found"
when its best score is below a cutoff, chosen for each baseline and knowledge
base as the one that maximises its own no_match F1 on the dev queries; the
holdout queries then show how well that choice carries over.

Two knowledge bases: the project's own (about 60 entries) and the same entries
padded with `faq.synthetic` entries to `size` (2,000 by default), because
latency and the answer/"not found" trade-off both change with size.  The gold
ids of the labelled queries stay valid: the padding only adds competitors.

Quality metrics are computed by one function (`score`) for all three, from
(ranked ids, status) pairs, with the definitions of `faq.evaluate`; for kounen
the result is checked against `faq.evaluate.evaluate` so the two cannot drift.
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
from faq.synthetic import synthetic_entries
from rapidfuzz import fuzz, process

from faq.evaluate import LabelledQuery, Report, evaluate, load_queries
from faq.loader import KnowledgeBase, load_kb
from faq.policy import Policy, Status
from faq.text import Analyzer

ROOT = Path(__file__).resolve().parent.parent
QUERY_FILES = {
    "dev": ROOT / "tests/data/dev_queries.jsonl",
    "holdout": ROOT / "tests/data/holdout_queries.jsonl",
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

# The targets the project set itself (see BENCHMARKS.md).
TARGET_DEV_SR1 = 0.95
TARGET_NOMATCH_PRECISION = 0.90
TARGET_P99_MS_PROJECT = 2.0
TARGET_P99_MS_LARGE = 10.0
TARGET_STARTUP_S = 1.5


@dataclass(frozen=True)
class Ranking:
    """What one matcher returned for one query, before any cutoff."""

    ids: tuple[str, ...]  # best entry first, at most K, no repeats
    top: float  # best score (the baselines' cutoff applies to it)
    status: Status | None  # kounen's own decision; None for the baselines


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
    for idx, score in hits:
        if score <= 0:
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
        return Ranking(tuple(c.entry.id for c in cands[:K]), cands[0].score if cands else 0.0, outcome.status)


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


def char_bigrams(text: str) -> list[str]:
    """Bigrams of the letters, digits, kana and kanji of the normalised text (spaces and punctuation dropped)."""
    chars = "".join(ch for ch in _plain(text) if ch.isalnum())
    if len(chars) < 2:
        return [chars] if chars else []
    return [chars[i : i + 2] for i in range(len(chars) - 1)]


class BM25Engine(Engine):
    name = "bm25s"

    def __init__(self, kb: KnowledgeBase) -> None:
        super().__init__()
        texts, self.owners, most = _variants(kb)
        self.k = min(K * most, len(texts))
        self.retriever, self.build_s = _timed(lambda: self._index(texts))

    @staticmethod
    def _index(texts: Sequence[str]) -> Any:
        retriever = bm25s.BM25()
        retriever.index([char_bigrams(t) for t in texts], show_progress=False)
        return retriever

    def run(self, query: str) -> Ranking:
        docs, scores = self.retriever.retrieve([char_bigrams(query)], k=self.k, show_progress=False)
        hits = [(int(d), float(s)) for d, s in zip(docs[0], scores[0], strict=True)]
        ids, top = _dedupe(hits, self.owners)
        return Ranking(ids, top, None)


# -- metrics -------------------------------------------------------------------


def score(
    queries: Sequence[LabelledQuery],
    results: Sequence[tuple[Sequence[str], Status]],
    latencies_ms: Sequence[float],
) -> Report:
    """faq.evaluate's metrics from (ranked ids, status) pairs, so that any matcher can be scored.

    SR@k: a gold entry among the first k (in-scope queries); MRR@10: mean
    reciprocal rank of the first gold entry; no_match precision / recall: of
    the "not found" decisions, how many were out of scope / of the out-of-scope
    queries, how many got "not found"; wrong-answer rate: answered from an
    entry not in gold, over all queries.  The answer of an "answered" outcome
    is the top-ranked entry, as in faq.policy.
    """
    sr1 = sr5 = wrong = answered_right = said_nomatch = said_nomatch_right = 0
    rr = 0.0
    misses: list[tuple[str, tuple[str, ...], str, tuple[str, ...]]] = []
    in_scope = [q for q in queries if q.gold_ids]
    for q, (ranked, status) in zip(queries, results, strict=True):
        gold = set(q.gold_ids)
        if status == "no_match":
            said_nomatch += 1
            said_nomatch_right += not gold
        if status == "answered" and ranked:
            if ranked[0] in gold:
                answered_right += 1
            else:
                wrong += 1
        if not gold:
            if status != "no_match":
                misses.append((q.query, q.gold_ids, status, tuple(ranked[:3])))
            continue
        if ranked[:1] and ranked[0] in gold:
            sr1 += 1
        else:
            misses.append((q.query, q.gold_ids, status, tuple(ranked[:3])))
        sr5 += bool(gold & set(ranked[:5]))
        rr += next((1 / rank for rank, eid in enumerate(ranked[:10], start=1) if eid in gold), 0.0)
    n_in, n_out = len(in_scope), len(queries) - len(in_scope)

    def ratio(num: float, den: int) -> float:
        return num / den if den else 1.0

    lat = np.array(latencies_ms) if latencies_ms else np.zeros(1)
    return Report(
        n=len(queries),
        n_in_scope=n_in,
        n_out_of_scope=n_out,
        sr1=ratio(sr1, n_in),
        sr5=ratio(sr5, n_in),
        mrr10=ratio(rr, n_in),
        answered_accuracy=ratio(answered_right, n_in),
        wrong_answer_rate=wrong / len(queries) if queries else 0.0,
        nomatch_precision=ratio(said_nomatch_right, said_nomatch),
        nomatch_recall=ratio(said_nomatch_right, n_out),
        p50_ms=float(np.percentile(lat, 50)),
        p99_ms=float(np.percentile(lat, 99)),
        misses=tuple(misses),
    )


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
    """Build the three engines over `kb`, measure every query set, set the baselines' cutoffs on dev."""
    _log(f"[{label}] building indexes over {len(kb.entries)} entries")
    engines: list[Engine] = [KounenEngine(kb), FuzzEngine(kb), BM25Engine(kb)]
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
        if not isinstance(engine, KounenEngine):
            engine.cutoff, cutoff_f1 = choose_cutoff(queries["dev"], measured["dev"].rankings)
        all_lat: list[float] = []
        for name, qs in queries.items():
            m = measured[name]
            report = score(qs, [(r.ids, engine.status(r)) for r in m.rankings], m.latencies_ms)
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


_QUALITY = ("sr1", "sr5", "mrr10", "nomatch_precision", "nomatch_recall", "wrong_answer_rate")


def _check_against_evaluate(
    policy: Policy, queries: Sequence[LabelledQuery], ours: Report, previous: str
) -> str:
    """Our `score` for kounen must equal faq.evaluate.evaluate on the quality metrics."""
    theirs = evaluate(policy, queries)
    bad = [f for f in _QUALITY if abs(getattr(theirs, f) - getattr(ours, f)) > 1e-9]
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
        f"{n_large - n_project:,} `faq.synthetic` entries (seed {SEED}).  Baseline cutoffs: the top score that "
        "maximises each baseline's own no_match F1 on dev, per knowledge base.",
        "",
    ]
    out += _table(
        [
            "KB",
            "queries",
            "matcher",
            "SR@1",
            "SR@5",
            "MRR@10",
            "no_match P",
            "no_match R",
            "wrong",
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
                _pct(r.report.sr1),
                _pct(r.report.sr5),
                f"{r.report.mrr10:.3f}",
                _pct(r.report.nomatch_precision),
                _pct(r.report.nomatch_recall),
                _pct(r.report.wrong_answer_rate),
                f"{r.report.p50_ms:.2f}",
                f"{r.report.p99_ms:.2f}",
                f"{r.build_s:.2f}",
                "policy.toml" if r.cutoff is None else f"{r.cutoff:.2f} ({r.cutoff_f1:.2f})",
            ]
            for r in rows
        ],
    )

    def row(setting: str, qs: str, engine: str) -> Row:
        return next(r for r in rows if (r.setting, r.query_set, r.engine) == (setting, qs, engine))

    engines = [r.engine for r in results[0].rows if r.query_set == "dev"]
    targets: list[list[str]] = []
    for res in results:
        setting = res.rows[0].setting
        targets.append(
            [f"dev SR@1 ≥ {TARGET_DEV_SR1:.0%}", setting]
            + [
                f"{_pct(row(setting, 'dev', e).report.sr1)} {_verdict(row(setting, 'dev', e).report.sr1 >= TARGET_DEV_SR1)}"
                for e in engines
            ]
        )
        for qs in queries:
            targets.append(
                [f"{qs} no_match precision ≥ {TARGET_NOMATCH_PRECISION:.0%}", setting]
                + [
                    f"{_pct(row(setting, qs, e).report.nomatch_precision)} "
                    f"{_verdict(row(setting, qs, e).report.nomatch_precision >= TARGET_NOMATCH_PRECISION)}"
                    for e in engines
                ]
            )
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
        f"- Peak RSS of this bench process (both knowledge bases, all three matchers loaded): {rss_self:.0f} MB.",
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
