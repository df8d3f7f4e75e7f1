"""Rank knowledge-base entries for a question, and say how much of it each one covers.

The matcher never replies: it ranks, and `faq.policy` decides.

Ranking is BM25 over three fields of each entry, added at equal weight:
  * pooled: all of the entry's question wordings as one text (a question mixing two
    paraphrases still meets both);
  * best: the single wording that matches best (a question said the way one wording
    says it wins over one that shares scattered words with many);
  * answer: the official answer, with its contacts' names and phone labels (a question
    about calling ナビダイヤル or the gBizID 窓口 finds the entry that gives that line).
No field is divided or capped: BM25 already saturates term frequency, and a cap makes
strong candidates tie.

Each query concept (faq.text.Concept) is counted once, by its best form: its word or
synonym counts fully, its compound parts partly.  Readings and typo correction are only
tried for concepts the knowledge base does not know at all, so they rescue かいやく and
解役 without adding a second vote for words that are already there.

Coverage (`Candidate.coverage`) is what the policy decides on, and it is measured from
both sides, at equal weight:
  * the question side: the IDF-weighted share of the question's countable concepts that
    this one entry covers anywhere in its text.  Concepts the knowledge base does not know
    keep the highest IDF, so a question about something else cannot be covered by an
    entry that shares only its familiar words;
  * the wording side: the best IDF-weighted share of one of the entry's wordings that the
    question says.  A long answer covers every word of 「申請の締め切りはいつ」 without
    being about applications, and a chatty question (「経理担当が休みで…人件費の欄に何を
    入れれば」) covers little of itself while saying all of one wording.
Each side alone misjudges one of these; their mean judges both.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import fuzz, process

from faq.durations import Span, stated_months
from faq.loader import KnowledgeBase
from faq.models import CONTACT_REF, Entry
from faq.text import _KANA, ASK_MARK, Analysis, Analyzer, Concept

K1 = 1.2
B = 0.75
# A compound's parts stand in for the compound at this share (補助率 is not 成長率's 率).
PART_WEIGHT = 0.5
# Typo correction: only unknown words this long, and only to a known word this close (rapidfuzz ratio).
TYPO_MIN_LEN = 3
TYPO_CUTOFF = 80.0
# Kana runs are read against the knowledge base's word readings of at least this length.
READING_MIN = 3


@dataclass(frozen=True)
class Candidate:
    """One ranked entry.  Candidates are ordered by `relevance`; `score` is what a person reads.

    `score` is the coverage (in [0, 1]: the mean of `question_coverage`, the share of the
    question this entry covers, and `wording_coverage`, the share of the entry's closest wording
    the question says), shown as the match degree in the console and stored with the query log;
    `relevance` is the BM25 sum the ranking and the lead are computed on, which has no fixed scale.
    """

    entry: Entry
    score: float
    matched: tuple[str, ...]  # query terms found in the entry (for highlighting)
    features: dict[str, float] = field(default_factory=dict)
    relevance: float = 0.0
    question_coverage: float = 0.0
    wording_coverage: float = 0.0

    @property
    def coverage(self) -> float:
        return self.score


class _Field:
    """A BM25 index over one field, postings as numpy arrays."""

    def __init__(self, docs: Sequence[Sequence[str]]) -> None:
        self.n_docs = len(docs)
        lengths = np.array([len(d) for d in docs], dtype=np.float64)
        avgdl = float(lengths.mean()) if self.n_docs and lengths.sum() else 1.0
        postings: dict[str, tuple[list[int], list[float]]] = {}
        for idx, doc in enumerate(docs):
            norm = K1 * (1 - B + B * lengths[idx] / avgdl)
            for term, tf in Counter(doc).items():
                docs_l, w_l = postings.setdefault(term, ([], []))
                docs_l.append(idx)
                w_l.append(tf * (K1 + 1) / (tf + norm))
        self.postings: dict[str, tuple[NDArray[np.int64], NDArray[np.float64]]] = {}
        for term, (docs_l, w_l) in postings.items():
            idf = _idf(self.n_docs, len(docs_l))
            self.postings[term] = (np.array(docs_l, dtype=np.int64), np.array(w_l) * idf)

    def scores(self, concepts: Sequence[tuple[tuple[str, ...], tuple[str, ...]]]) -> NDArray[np.float64]:
        """BM25 of every document, each concept scored by its best form (full terms, or parts partly)."""
        total = np.zeros(self.n_docs)
        for terms, parts in concepts:
            found = [p for p in map(self.postings.get, terms) if p is not None]
            part_found = [p for p in map(self.postings.get, parts) if p is not None] if parts else []
            if not part_found:
                if len(found) == 1:  # one form: its documents only, no scratch array
                    docs, weights = found[0]  # a posting lists each document once
                    total[docs] += weights
                    continue
                if not found:
                    continue
            best = np.zeros(self.n_docs)
            for docs, weights in found:
                best[docs] = np.maximum(best[docs], weights)
            if part_found:
                partial = np.zeros(self.n_docs)
                for docs, weights in part_found:
                    partial[docs] += weights
                best = np.maximum(best, partial * (PART_WEIGHT / len(parts)))
            total += best
        return total


def _idf(n: int, df: int) -> float:
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


@dataclass(frozen=True)
class Query:
    """A question's concepts after readings and typo fixes: (full terms, parts, IDF weight, countable)."""

    analysis: Analysis
    concepts: tuple[
        tuple[tuple[str, ...], tuple[str, ...], float, bool], ...
    ]  # countable: counts for coverage

    # How long the question says something lasted (「10か月」), when it says so (faq/durations.py),
    # and the words it is read as saying for that (1年未満): the KB's words, not the asker's.
    span: Span | None = None
    span_words: frozenset[str] = frozenset()
    # The names the question says that the KB does not know, under any form, fix or part
    # (`Concept.name`): 「e-Tax」, 「マイナポータル」's マイナ.
    unknown_names: tuple[str, ...] = ()
    # The compounds the question says (two nouns as one word) that some text of the KB also says
    # as one word: a term of the documents (実績報告), not a question's terse way of putting
    # two words (ツール解約).  See `question_coverage`.
    compounds: tuple[tuple[str, str], ...] = ()
    # Values computed once per question and shared by its candidates (not part of equality).
    cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def said(self) -> frozenset[str]:
        """Every full form the question says (its words, synonyms, readings and typo fixes)."""
        return frozenset(t for full, *_ in self.concepts for t in full)

    @cached_property
    def plain_words(self) -> frozenset[str]:
        """The question's words that name no document: verbs and formal nouns (入れる, うち), and
        the words read in from a stated span (1年未満 for 「10か月」), which are the KB's, not the
        asker's."""
        return frozenset(c.key for c in self.analysis.concepts if not c.salient) | self.span_words

    @cached_property
    def said_parts(self) -> frozenset[str]:
        """The compound parts of the question's words."""
        return frozenset(p for _, parts, *_ in self.concepts for p in parts)


class Matcher:
    """Ranked candidates, with coverage, for a question over one knowledge base."""

    def __init__(self, kb: KnowledgeBase, analyzer: Analyzer | None = None) -> None:
        self.kb = kb
        self.analyzer = analyzer or Analyzer(kb.synonyms, ignore=ignored_phrases(kb))
        self.entries: tuple[Entry, ...] = kb.entries
        # Where each entry id sits in `entries` (a dict: comparing pydantic entries costs more).
        self.position = {e.id: i for i, e in enumerate(self.entries)}
        variant_entry: list[int] = []
        wording_docs: list[tuple[str, ...]] = []
        pooled_docs: list[tuple[str, ...]] = []
        answer_docs: list[tuple[str, ...]] = []
        self._entry_terms: list[frozenset[str]] = []
        self._entry_full: list[frozenset[str]] = []
        # The negated predicates each entry's wordings say (ログインできません): what goes wrong.
        self._entry_predicates: list[frozenset[str]] = []
        # What the KB's texts say each word is done to (解約 → ITツール ×n, 一部 ×m): the word a
        # brand name stands for when a question does the same to it (`_usual_objects`).
        self._objects_of: dict[str, Counter[str]] = {}
        # The compounds each entry's wordings and answer say (two nouns as one word: 実績報告).
        self._entry_compounds: list[frozenset[tuple[str, str]]] = []
        readings: dict[str, set[str]] = {}
        wording_concepts: list[tuple[Concept, ...]] = []
        for idx, entry in enumerate(self.entries):
            pooled: list[str] = []
            seen: set[str] = set()
            full: set[str] = set()
            predicates: set[str] = set()
            compounds: set[tuple[str, str]] = set()
            for text in (entry.question, *entry.paraphrases):
                analysis = self.analyzer.analyze(text)
                compounds.update(analysis.compounds)
                self._add_objects(analysis.objects)
                wording_concepts.append(tuple(c for c in analysis.concepts if c.countable))
                variant_entry.append(idx)
                wording_docs.append(analysis.terms)
                pooled.extend(analysis.terms)
                seen.update(analysis.terms)
                full.update(analysis.full_terms)
                predicates.update(analysis.predicates)
                _add_readings(readings, analysis.concepts)
            self._entry_predicates.append(frozenset(predicates))
            pooled_docs.append(tuple(pooled))
            answer = self.analyzer.analyze(self._answer_text(entry)) if entry.answer else None
            answer_docs.append(answer.terms if answer else ())
            if answer is not None:
                compounds.update(answer.compounds)
                self._add_objects(answer.objects)
                seen.update(answer.terms)
                full.update(answer.full_terms)
                _add_readings(readings, answer.concepts)
            self._entry_terms.append(frozenset(seen))
            self._entry_full.append(frozenset(full))
            self._entry_compounds.append(frozenset(compounds))
        # The compounds the documents use as terms: said as one word somewhere in the KB.
        self._kb_compounds: frozenset[tuple[str, str]] = frozenset().union(*self._entry_compounds)
        for reading, canonical in self.analyzer.synonym_readings.items():
            readings.setdefault(reading, set()).add(canonical)
        self._variant_entry = np.array(variant_entry, dtype=np.int64)
        self._best = _Field(wording_docs)
        self._pooled = _Field(pooled_docs)
        self._answers = _Field(answer_docs)
        n = len(self.entries)
        df: Counter[str] = Counter(t for terms in self._entry_terms for t in terms)
        self._df = df
        self.unknown_idf = _idf(n, 0)
        self._idf = {t: _idf(n, d) for t, d in df.items()}
        # Which programs' official answers use each word: a word of one program's document only
        # (効果報告, ナビダイヤル, IT事業者ポータル) says which program a question is about.  Only the
        # answers count: they are the documents' text, where paraphrases are an editor's words.
        self._programs_of: dict[str, set[str]] = {}
        for entry, answer_terms in zip(self.entries, answer_docs, strict=True):
            for t in answer_terms:
                self._programs_of.setdefault(t, set()).add(entry.program)
        # Which programs' questions are asked with each word: the wordings say what an entry is
        # about, where an answer also says words in passing (該当, 別).
        self._asked_in: dict[str, set[str]] = {}
        for entry, wording_terms in zip(self.entries, pooled_docs, strict=True):
            for t in wording_terms:
                self._asked_in.setdefault(t, set()).add(entry.program)
        # How many of each program's entries say each word (wordings or answer), and how many
        # entries each program has: a program's own vocabulary is said throughout its document.
        self._program_size: Counter[str] = Counter(e.program for e in self.entries)
        self._said_in: dict[str, Counter[str]] = {}
        for entry, full_terms in zip(self.entries, self._entry_full, strict=True):
            self._said_in.setdefault(entry.program, Counter()).update(full_terms)
        # The wording side of coverage, as arrays over every (wording, concept) pair so that a
        # question touches only what it says: the wording each concept belongs to, its IDF, and
        # which pairs each form and each compound part points to.
        concept_wording: list[int] = []
        concept_weight: list[float] = []
        forms: dict[str, list[int]] = {}
        part_of: dict[str, list[int]] = {}
        # Each wording's n heaviest concepts' IDF, for n = 1, 2, ... (column n - 1; its total past
        # its last concept): what a question of n words can at most say of it.  A wording of
        # question words only (inf) covers nothing.
        longest = max((len(c) for c in wording_concepts), default=0)
        heaviest = np.full((len(wording_concepts), max(longest, 1)), np.inf)
        for w, concepts in enumerate(wording_concepts):
            weights = [self._weight(c.terms) for c in concepts]
            for c, weight in zip(concepts, weights, strict=True):
                i = len(concept_wording)
                concept_wording.append(w)
                concept_weight.append(weight)
                for t in c.terms:
                    forms.setdefault(t, []).append(i)
                for p in c.parts:
                    part_of.setdefault(p, []).append(i)
            if weights:
                cum = np.cumsum(sorted(weights, reverse=True))
                heaviest[w, : len(cum)] = cum
                heaviest[w, len(cum) :] = cum[-1]
        self._concept_wording = np.array(concept_wording, dtype=np.int64)
        self._concept_weight = np.array(concept_weight, dtype=np.float64)
        self._wording_heaviest = heaviest
        self._forms = {t: np.array(ix, dtype=np.int64) for t, ix in forms.items()}
        self._part_of = {t: np.array(ix, dtype=np.int64) for t, ix in part_of.items()}
        self._readings = {r: tuple(sorted(ts)) for r, ts in readings.items() if len(r) >= READING_MIN}
        # Entries with a condition on a span of months, and the words their wordings say it with.
        self._spans = [
            (
                idx,
                e.months,
                tuple(c.key for c in self.analyzer.analyze(e.months.says).concepts if c.countable),
            )
            for idx, e in enumerate(self.entries)
            if e.months is not None
        ]
        # The lengths of the known readings starting with each two kana, longest first.
        heads: dict[str, set[int]] = {}
        for reading in self._readings:
            heads.setdefault(reading[:2], set()).add(len(reading))
        self._reading_heads = {h: sorted(ns, reverse=True) for h, ns in heads.items()}
        by_len: dict[int, list[str]] = {}
        for word in sorted(self._idf):
            by_len.setdefault(len(word), []).append(word)
        # The typo candidates for a word of each length: known words one shorter to one longer.
        self._typo_pool = {
            n: [w for m in (n - 1, n, n + 1) for w in by_len.get(m, ())]
            for n in range(1, max(by_len, default=0) + 2)
        }
        # Which entries belong to each program, for `rank(programs=...)`.  Shared by the threads:
        # a mask never changes once made, and a lost race only makes it twice.
        self._program_masks: dict[frozenset[str], NDArray[np.bool_]] = {}

    def _answer_text(self, entry: Entry) -> str:
        """The answer with each contact's name, phone labels and hours in place of its placeholder."""

        def contact(m: object) -> str:
            found = self.kb.contacts.get(m.group(1))  # type: ignore[attr-defined]
            if found is None:
                return " "
            labels = " ".join(p.label for p in found.phones)
            return f" {found.name} {labels} {found.hours_text or ''} "

        return CONTACT_REF.sub(contact, entry.answer)

    # -- the query -------------------------------------------------------------------

    def known(self, term: str) -> bool:
        return term in self._idf

    def prepare(self, analysis: Analysis) -> Query:
        """The question's concepts, with readings and typo fixes for words the KB does not know."""
        out: list[tuple[tuple[str, ...], tuple[str, ...], float, bool]] = []
        unknown: set[str] = set()
        names: list[str] = []
        # The question's own nouns the KB knows: the context a homophone slip is read in.
        context = frozenset(
            t for c in analysis.concepts if c.salient and c.countable for t in c.terms if self.known(t)
        )
        # A negated predicate is no word: it tells entries apart (`predicates_said`), it does not rank.
        spoken = [c for c in analysis.concepts if not c.predicate]
        for c in spoken:
            terms = c.terms
            if not any(self.known(t) for t in terms):
                fixed = self._by_reading(c, context) or self._typo(c.key)
                if fixed:
                    terms = (*terms, *fixed)
                else:
                    unknown.add(c.key)
            known = any(self.known(t) for t in terms) or any(self.known(p) for p in c.parts)
            if c.countable and c.salient and not known:
                # A word said as what is cancelled or introduced (スマレジを解約) stands for what
                # the KB's texts cancel or introduce (ITツール).
                usual = self._usual_objects(analysis, c.key)
                terms, known = (*terms, *usual), bool(usual)
            if c.name and c.countable and not known:
                names.append(c.key)
            out.append((terms, c.parts, self._weight(terms), c.countable and (known or c.salient)))
        # A kana-written question splits into short dictionary words that mean nothing here
        # (じぎょうしゃぽーたる → じ / 行 / しゃ / …); read such a run against the KB's readings.
        # A found word replaces the words it spans when it joins several of them or explains an
        # unknown one; a word the KB knows, read as itself, is not counted a second time.
        dropped: set[str] = set()
        added: list[str] = []
        for reading, spans in analysis.runs:
            for a, b, words in self._words_in_reading(reading):
                # A found word must hold whole words of the text: splitting an unknown compound
                # (提出期限 → 提出 + 期限) into known words is the parts' job, which count partly.
                inner = [(key, surface) for la, lb, key, surface in spans if a <= la and lb <= b]
                if not (len(inner) >= 2 or any(key in unknown for key, _ in inner)):
                    continue
                surface = "".join(sf for _, sf in inner)
                # Kana is read as written; a kanji typo keeps a character of the word (辞体届 → 辞退届).
                fitting = words if _KANA.match(surface) else tuple(w for w in words if set(w) & set(surface))
                if fitting:
                    dropped.update(key for key, _ in inner)
                    added.extend(fitting)
        if added:
            out = [o for o, c in zip(out, spoken, strict=True) if c.key not in dropped]
        # A span of months the question states is said the way the entries that it fits say it:
        # 「10か月で解約」 says 1年未満, as the entry for cancelling within the first year does.
        span = stated_months(analysis.normalized) if self._spans else None
        have = {t for o in out for t in o[0]}
        # The words found in the readings, as concepts of their own (each counted once).
        read_in = [self._read_in(w) for w in dict.fromkeys(added) if w not in have]
        span_words: frozenset[str] = frozenset()
        if span is not None:
            # Only for an entry the question is otherwise about (「こうか報告って2年目もある？」 is
            # about a report's second year, not about cancelling in it): it says another of its words.
            asked = {t for full, _, _, countable in out if countable for t in full}
            # And only when that entry covers the question's own words at least as well as every
            # entry of its program without a span: 「半年前に入れたツールのうち一つだけ解約」 is the
            # partial cancellation, and its span says when the tools came in, not which entry.
            own = Query(analysis, (*out, *read_in))
            span_words = frozenset(
                w
                for idx, months, words in self._spans
                if span.fits(months.min, months.below)
                and asked & (self._entry_full[idx] - set(words))
                and self._span_entry_leads(own, idx)
                for w in words
                if w not in have
            )
            read_in += [self._read_in(w) for w in sorted(span_words) if w not in added]
        unknown_names = tuple(n for n in names if n not in dropped)
        compounds = tuple(c for c in analysis.compounds if c in self._kb_compounds)
        return Query(analysis, (*out, *read_in), span, span_words, unknown_names, compounds)

    def _add_objects(self, objects: Sequence[tuple[str, str]]) -> None:
        for word, verb in objects:
            self._objects_of.setdefault(verb, Counter())[word] += 1

    def _usual_objects(self, analysis: Analysis, word: str) -> tuple[str, ...]:
        """The words a word the KB does not know stands for: for each thing the question does to
        it (「スマレジを解約」), the word the KB's texts most often do that to (ITツール).

        The documents speak of the subsidised tool as ITツール; an applicant names it by its
        brand or its kind (弥生会計, クラウドサービス, POSレジ).  Said as what is cancelled or
        introduced, it is that tool, and the question is about the documents' subject.  Said
        otherwise (「freeeのパスワード」, 「弥生会計にログイン」), it names a thing of its own that
        the documents do not describe, and stays unknown (a name is then refused, faq/policy.py).
        """
        found = {
            self._objects_of[verb].most_common(1)[0][0]
            for said, verb in analysis.objects
            if said == word and verb in self._objects_of
        }
        return tuple(sorted(found))

    def _read_in(self, word: str) -> tuple[tuple[str, ...], tuple[str, ...], float, bool]:
        """A word the question is read as saying (from a reading, or from a stated span), as a
        concept: the KB's own form, no compound parts, counted for coverage."""
        return ((word,), (), self._weight((word,)), True)

    def _span_entry_leads(self, query: Query, idx: int) -> bool:
        """Whether span entry `idx` covers the question at least as well as every entry of its
        program that has no span condition (the partial cancellation, the refund...)."""
        program = self.entries[idx].program
        own = self.question_coverage(query, idx)
        return all(
            own >= self.question_coverage(query, j) - 1e-9
            for j, e in enumerate(self.entries)
            if e.program == program and e.months is None
        )

    def _weight(self, terms: Sequence[str]) -> float:
        """IDF of the concept: its rarest known form, or the highest IDF when the KB knows none."""
        known = [self._idf[t] for t in terms if t in self._idf]
        return max(known) if known else self.unknown_idf

    def _by_reading(self, c: Concept, context: frozenset[str] = frozenset()) -> tuple[str, ...]:
        """Known words read like an unknown one.

        Kana is read as written (かいやく → 解約).  A kanji word is an input-method slip for a known
        word of the same sound when it keeps one of its characters (解役 → 解約), or when the
        question's other nouns say the same thing as an entry that has the known word: in
        「効果報告の起源を過ぎたら」 起源 is 期限, because an entry speaks of 効果報告 and 期限
        together; 「明日の天気」 has no such noun, so 天気 stays 天気 and is not 転記.
        """
        if len(c.reading) < READING_MIN:
            return ()
        found = self._readings.get(c.reading, ())
        if _KANA.match(c.key):
            return found
        kept = tuple(w for w in found if set(w) & set(c.key))
        if kept or not context:
            return kept
        return tuple(
            w
            for w in found
            if any(w in terms and not terms.isdisjoint(context) for terms in self._entry_full)
        )

    def _words_in_reading(self, run: str) -> list[tuple[int, int, tuple[str, ...]]]:
        """Known words whose reading occurs in a kana run (start, end, words), longest first, no overlaps."""
        found: list[tuple[int, int, tuple[str, ...]]] = []
        i = 0
        while i < len(run) - 1:
            for size in self._reading_heads.get(run[i : i + 2], ()):
                words = self._readings.get(run[i : i + size]) if i + size <= len(run) else None
                if words is not None:
                    found.append((i, i + size, words))
                    i += size
                    break
            else:
                i += 1
        return found

    def _typo(self, word: str) -> tuple[str, ...]:
        if len(word) < TYPO_MIN_LEN:
            return ()
        # A ratio of 80 needs lengths within a quarter of each other: compare only those.
        best = process.extractOne(
            word, self._typo_pool.get(len(word), ()), scorer=fuzz.ratio, score_cutoff=TYPO_CUTOFF
        )
        return (best[0],) if best else ()

    # -- ranking and coverage ----------------------------------------------------------

    def question_coverage(self, query: Query, idx: int) -> float:
        """IDF-weighted share of the question's countable concepts that entry `idx` covers.

        A concept counts fully when one of its forms is a word of the entry, and partly
        (PART_WEIGHT) when it meets the entry only through compound parts: the question's
        補助率 through 率 of 成長率, or the question's 申請 through 申請マイページ.

        The same holds the other way round: where the question says two nouns as one word that
        the documents use as a term (実績報告, said so in the 2020 FAQ), an entry that says them
        only apart (実績値 ... 効果報告) covers each partly.  「実績報告のやり方」 is about the
        実績報告, which no entry describes, not about the report period's 実績 and 効果報告.
        The dictionary lists few such terms whole, so a question's compound is told from its
        terse way of putting two words (ツール解約) by whether the KB says it as one word anywhere.
        """
        full_terms = self._entry_full[idx]
        terms = self._entry_terms[idx]
        apart = self._said_apart(query, idx)
        total = covered = 0.0
        for full, parts, weight, countable in query.concepts:
            if not countable:
                continue
            total += weight
            if not terms.isdisjoint(full):  # the entry's full forms are among its terms
                whole = not full_terms.isdisjoint(full) and full[0] not in apart
                covered += weight if whole else weight * PART_WEIGHT
            elif parts and not terms.isdisjoint(parts):
                part_idf = [self._idf.get(p, self.unknown_idf) for p in parts]
                got = sum(w for p, w in zip(parts, part_idf, strict=True) if p in terms)
                covered += weight * PART_WEIGHT * got / sum(part_idf)
        return covered / total if total else 0.0

    def _said_apart(self, query: Query, idx: int) -> frozenset[str]:
        """The question's nouns that make one of the KB's compounds (実績報告) which entry `idx`
        does not say as one word: both nouns count there only partly, as compound parts do."""
        own = self._entry_compounds[idx]
        return frozenset(word for pair in query.compounds if pair not in own for word in pair)

    def wording_coverage(self, query: Query, idx: int) -> float:
        """The best IDF-weighted share of one of entry `idx`'s wordings that the question says.

        A wording's concept counts fully when the question has one of its forms, and partly
        (PART_WEIGHT) when they meet only through compound parts (the wording's 申請マイページ
        and the question's 申請).  Question words and numbers are left out, as on the question side.

        A question of n words is measured against the n heaviest words of each wording (all of
        them, when it has fewer): the staff's one-word 「解約」 says all that one word can of
        「ツールを半年で解約したら」, while 「申請の締め切り」 still says only half of
        「効果報告の締め切り」.
        """
        return float(self.wording_shares(query)[idx])

    def wording_shares(self, query: Query) -> NDArray[np.float64]:
        """`wording_coverage` of every entry at once (one pass over the question's words)."""
        cached: NDArray[np.float64] | None = query.cache.get("wording_shares")
        if cached is not None:
            return cached
        level = np.zeros(len(self._concept_wording))
        empty = np.zeros(0, dtype=np.int64)
        for t in query.said_parts:  # the question's part 申請 meets the wording's word 申請
            level[self._forms.get(t, empty)] = PART_WEIGHT
        for t in query.said | query.said_parts:  # the wording's part 申請 (of 申請マイページ) meets 申請
            level[self._part_of.get(t, empty)] = PART_WEIGHT
        for t in query.said:  # a form of the concept: fully
            level[self._forms.get(t, empty)] = 1.0
        covered = np.bincount(
            self._concept_wording, weights=level * self._concept_weight, minlength=len(self._wording_heaviest)
        )
        best = np.zeros(len(self.entries))
        said_words = sum(1 for _, _, _, countable in query.concepts if countable)
        column = min(max(said_words, 1), self._wording_heaviest.shape[1]) - 1
        np.maximum.at(best, self._variant_entry, np.minimum(1.0, covered / self._wording_heaviest[:, column]))
        query.cache["wording_shares"] = best
        return best

    def sibling_words(self, query: Query, idx: int, other: int) -> tuple[str, ...]:
        """The question's words that entry `idx` says whole and entry `other` meets only through
        compound parts: 補助事業者 against a wording of IT導入支援事業者.  The other entry says a
        sibling term, which tells the two apart however much else they share."""
        full_idx = self._entry_full[idx]
        terms_other, full_other = self._entry_terms[other], self._entry_full[other]
        return tuple(
            full[0]
            for full, parts, _, countable in query.concepts
            if countable
            and parts
            and not full_idx.isdisjoint(full)
            and terms_other.isdisjoint(full)
            and full_other.isdisjoint(full)
            and not terms_other.isdisjoint(parts)
        )

    def predicates_said(self, query: Query, idx: int) -> tuple[str, ...]:
        """The question's negated predicates that entry `idx`'s wordings say too: 「ログインできない」
        and the failed-login entry's 「ログインできません」, where the forgotten-ID entry says
        「わかりません」 of the same nouns."""
        said = self._entry_predicates[idx]
        return tuple(p for p in query.analysis.predicates if p in said and not p.endswith(ASK_MARK))

    def asks_alike(self, query: Query, idx: int) -> bool:
        """Whether entry `idx`'s wordings ask for a kind of answer the question asks for."""
        kinds = self._entry_predicates[idx]
        return any(p.endswith(ASK_MARK) and p in kinds for p in query.analysis.predicates)

    def asks_otherwise(self, query: Query, idx: int) -> bool:
        """Whether entry `idx`'s wordings ask for another kind of answer than the question does
        (the way to hand in a 辞退届, where the question asks in which cases one is needed).  An
        entry whose wordings ask for no kind, or for the question's, is not told apart by it: one
        editor's 「…する方法」 among the paraphrases of one entry and not of its sibling says nothing."""
        asked = {p for p in query.analysis.predicates if p.endswith(ASK_MARK)}
        kinds = {p for p in self._entry_predicates[idx] if p.endswith(ASK_MARK)}
        return bool(asked and kinds and not asked & kinds)

    def one_program_words(self, query: Query, idx: int) -> tuple[str, ...]:
        """The question's nouns that entry `idx` covers and that only its program's answers use."""
        program = self.entries[idx].program
        full_terms = self._entry_full[idx]
        plain = query.plain_words
        return tuple(
            t
            for full, _, _, countable in query.concepts
            if countable and full[0] not in plain
            for t in full
            if t in full_terms and self._programs_of.get(t) == {program}
        )

    def question_programs(self, query: Query, min_share: float) -> dict[str, tuple[str, ...]]:
        """The programs the question's nouns name: each one's words among them.

        A noun names a program when only that program's answers use it, only its wordings are
        asked with it, and at least `min_share` of that program's entries say it: 効果報告 is in
        most 2023 entries and in no 2020 one, IT事業者ポータル in a third of the 2020 ones.  A word
        one document merely mentions (勤怠, a tool's kind; ナビダイヤル, a line both programs have
        under another name) is said by a few entries only and names nothing.  A concept counts
        with all its forms (synonyms, readings).
        """
        plain = query.plain_words
        found: dict[str, tuple[str, ...]] = {}
        for full, _, _, countable in query.concepts:
            if not countable or full[0] in plain:
                continue
            programs = set().union(*(self._programs_of.get(t, set()) for t in full))
            asked = set().union(*(self._asked_in.get(t, set()) for t in full))
            if len(programs) != 1 or asked != programs:
                continue
            (program,) = programs
            said = max(self._said_in[program].get(t, 0) for t in full)
            if said >= min_share * self._program_size[program]:
                found[program] = (*found.get(program, ()), *full)
        return found

    def rank(
        self,
        query: str,
        *,
        programs: set[str] | None = None,
        k: int = 10,
        analysis: Analysis | None = None,
    ) -> list[Candidate]:
        """Best entries first, each with its coverage.  `programs` keeps only entries of those programs."""
        if not self.entries:
            return []
        prepared = self.prepare(analysis or self.analyzer.analyze(query, negations=True))
        return self.rank_prepared(prepared, programs=programs, k=k)

    def rank_prepared(
        self, prepared: Query, *, programs: set[str] | None = None, k: int = 10
    ) -> list[Candidate]:
        pairs = [(full, parts) for full, parts, _, _ in prepared.concepts]
        if not pairs:
            return []
        best = np.zeros(len(self.entries))
        np.maximum.at(best, self._variant_entry, self._best.scores(pairs))
        pooled = self._pooled.scores(pairs)
        answers = self._answers.scores(pairs)
        total = best + pooled + answers  # equal weights: fitted weights gained nothing on dev
        if programs is not None:
            key = frozenset(programs)
            allowed = self._program_masks.get(key)
            if allowed is None:  # few program sets exist: each mask is made once
                allowed = np.array([e.program in key for e in self.entries])
                self._program_masks[key] = allowed
            total = np.where(allowed, total, -1.0)
        top = np.argsort(-total, kind="stable")[:k]
        top = top[total[top] > 0]
        query_terms = tuple(dict.fromkeys(t for full, _, _, _ in prepared.concepts for t in full))
        shares = self.wording_shares(prepared)
        out = []
        # Plain floats for the few candidates, taken from the arrays at once.
        rows = zip(
            top.tolist(),
            best[top].tolist(),
            pooled[top].tolist(),
            answers[top].tolist(),
            total[top].tolist(),
            shares[top].tolist(),
            strict=True,
        )
        for idx, b, p, a, relevance, said in rows:
            terms = self._entry_terms[idx]
            matched = tuple(t for t in query_terms if t in terms)
            asked = self.question_coverage(prepared, idx)
            out.append(
                Candidate(
                    self.entries[idx],
                    (asked + said) / 2,
                    matched,
                    {"best": b, "pooled": p, "answer": a},
                    relevance,
                    question_coverage=asked,
                    wording_coverage=said,
                )
            )
        return out


def ignored_phrases(kb: KnowledgeBase) -> list[str]:
    """Words left out of the matching: the subsidy's own name (every entry is about it) and program
    names and budget years (the policy selects the program from them, or asks; 令和元年度補正 names
    IT導入補助金2020 or 2021).  Program words that also name a subject (後年窓口, `content_cues`)
    and bare years (dates) stay, as do names of one or two characters (r2 is part of other words).
    A three-character name (特別枠, 複数社) goes: left in, it weighs as a word no entry says, and
    「特別枠の申請マイページにログインできない」 covered too little of itself to be answered."""
    names = [
        c for p in kb.programs.values() for c in (*p.cues, *p.reply_cues) if not c.isdigit() and len(c) >= 3
    ]
    return [*kb.ignore_phrases, *names]


def _add_readings(readings: dict[str, set[str]], concepts: Sequence[Concept]) -> None:
    for c in concepts:
        if c.reading:
            readings.setdefault(c.reading, set()).add(c.key)
