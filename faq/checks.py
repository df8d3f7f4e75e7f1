"""`kounen kb check`: what an editor must fix before a knowledge base ships.

Load-time validation already rejects broken files.  This adds what only the
matcher can tell: a paraphrase that, were it not in the index, would land on
another entry is a sign that two entries overlap or that the paraphrase is
misfiled, and users asking that way would get the wrong answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache

from rapidfuzz import fuzz

from faq.loader import KnowledgeBase
from faq.matcher import Matcher, ignored_phrases
from faq.policy import Policy
from faq.text import Analysis, Analyzer, normalize


class _CachedAnalyzer(Analyzer):
    """Leave-one-out rebuilds the index hundreds of times; analyse each text once."""

    @cache  # noqa: B019 - lives as long as one check run
    def analyze(self, text: str, *, negations: bool = False) -> Analysis:
        return super().analyze(text, negations=negations)


@dataclass
class CheckReport:
    entries: int = 0
    paraphrases: int = 0
    landed_home: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"error: {p}" for p in self.problems] + [f"warning: {w}" for w in self.warnings]
        rate = self.landed_home / self.paraphrases if self.paraphrases else 1.0
        out.append(
            f"{self.entries} entries, {self.paraphrases} paraphrases; "
            f"{self.landed_home} land on their own entry when left out of the index ({rate:.1%}); "
            f"{len(self.problems)} problem(s), {len(self.warnings)} warning(s)"
        )
        return out


# A wording this similar (rapidfuzz ratio over letters, digits and kana/kanji) to an
# evaluation question is a copy: it would turn that question into a test of memory.
NEAR_COPY = 90.0


def _bare(text: str) -> str:
    return "".join(ch for ch in normalize(text) if ch.isalnum())


def copied_questions(kb: KnowledgeBase, questions: Sequence[tuple[str, str]]) -> list[str]:
    """KB wordings identical or nearly identical to an evaluation question ((where, question) pairs).

    No evaluation question may be copied into the knowledge base: pasting missed questions in as
    paraphrases lifts every figure while the bot gets no better at questions nobody has seen.
    A short answer is checked too: it is not matched today, but a copy there is a copy all the
    same, one step from being indexed.
    """
    bare_questions = [(where, q, _bare(q)) for where, q in questions]
    found: list[str] = []
    for entry in kb.entries:
        wordings = [("wording", w) for w in (entry.question, *entry.paraphrases)]
        if entry.short:
            wordings.append(("short answer", entry.short))
        for kind, wording in wordings:
            bare = _bare(wording)
            for where, question, bare_q in bare_questions:
                if bare and bare_q and fuzz.ratio(bare, bare_q) >= NEAR_COPY:
                    found.append(
                        f"{entry.id}: {kind} {wording!r} copies the evaluation question {question!r} ({where})"
                    )
                    break
    return found


def check_kb(kb: KnowledgeBase, eval_questions: Sequence[tuple[str, str]] = ()) -> CheckReport:
    report = CheckReport(entries=len(kb.entries))
    report.problems += copied_questions(kb, eval_questions)
    report.problems += [str(w) for w in kb.warnings]  # unused contacts
    seen: dict[str, list[str]] = defaultdict(list)
    for entry in kb.entries:
        for text in (entry.question, *entry.paraphrases):
            seen[normalize(text)].append(entry.id)
    for text, owners in seen.items():
        if len(set(owners)) > 1:
            report.problems.append(f"the same wording {text!r} is in entries {sorted(set(owners))}")
    base = Matcher(kb)
    analyzer = _CachedAnalyzer(kb.synonyms, ignore=ignored_phrases(kb))
    config = Policy(kb, base).config
    for index, entry in enumerate(kb.entries):
        for p_index, paraphrase in enumerate(entry.paraphrases):
            report.paraphrases += 1
            rest = entry.paraphrases[:p_index] + entry.paraphrases[p_index + 1 :]
            held_out = entry.model_copy(update={"paraphrases": rest})
            entries = (*kb.entries[:index], held_out, *kb.entries[index + 1 :])
            policy = Policy(
                replace(kb, entries=entries), Matcher(replace(kb, entries=entries), analyzer), config
            )
            outcome = policy.decide(paraphrase, program=entry.program if entry.program != "common" else None)
            ranked = [c.entry.id for c in outcome.candidates]
            top = ranked[0] if ranked else None
            if top == entry.id:
                report.landed_home += 1
                if outcome.status == "no_match":
                    report.warnings.append(
                        f"{entry.id}: paraphrase {paraphrase!r} is not found (score too low)"
                    )
            elif outcome.status == "answered" and entry.id in {e.id for e in outcome.answers}:
                report.landed_home += 1  # shown beside the other program's answer
            elif outcome.status == "answered" or entry.id not in ranked[:3]:
                # A user asking this way would get another entry's answer, or not see this one:
                # the entry needs a wording closer to how people ask, or the entries overlap.
                report.warnings.append(
                    f"{entry.id}: paraphrase {paraphrase!r} lands on {top} ({outcome.status}) when left out"
                )
            else:
                report.warnings.append(
                    f"{entry.id}: paraphrase {paraphrase!r} is ranked below {top} ({outcome.status})"
                )
    return report
