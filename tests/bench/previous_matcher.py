"""The previous matcher (before coverage-based matching), kept only for `make bench`.

Rank knowledge-base entries for a question.  The matcher never replies.

Scores are built to be comparable across queries and knowledge bases, because
one threshold must decide between answering and admitting "not found":
each field score is a BM25 sum divided by the summed IDF of the query's terms,
i.e. roughly "how much of what the user said this entry covers", in [0, 1].
Words the knowledge base has never seen count fully in that denominator, so a
question about something else scores low instead of matching on its one
familiar word.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import fuzz, process

from faq.loader import KnowledgeBase
from faq.models import Entry
from tests.bench.previous_text import READING_MARK, Analysis, Analyzer

K1 = 1.2
B = 0.75
# How the fields add up: question-like text dominates, readings rescue kana and
# typos, the answer body helps for queries phrased as the answer is.
WEIGHTS = {"words": 0.45, "reading": 0.25, "answer": 0.15, "fuzzy": 0.15}
# All of an entry's question wordings pooled into one text, slightly discounted:
# catches a question that mixes words from two paraphrases.
POOLED = 0.9
RERANK = 30
DENOM_TERMS = 10
TYPO_MIN_LEN = 3
TYPO_CUTOFF = 80.0


@dataclass(frozen=True)
class Candidate:
    entry: Entry
    score: float
    matched: tuple[str, ...]  # query terms found in the entry (for highlighting)
    features: dict[str, float]


class _Field:
    """A BM25 index over one field, with postings as numpy arrays."""

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
        self.idf: dict[str, float] = {}
        self.postings: dict[str, tuple[NDArray[np.int64], NDArray[np.float64]]] = {}
        for term, (docs_l, w_l) in postings.items():
            idf = self._idf(len(docs_l))
            self.idf[term] = idf
            self.postings[term] = (np.array(docs_l, dtype=np.int64), np.array(w_l) * idf)
        self.unknown_idf = self._idf(0)

    def _idf(self, df: int) -> float:
        return math.log(1 + (self.n_docs - df + 0.5) / (df + 0.5))

    def scores(self, terms: Iterable[str]) -> NDArray[np.float64]:
        """Normalised BM25 of every document: sum of matched weights / sum of query IDF."""
        total = np.zeros(self.n_docs)
        weights = []
        for term in set(terms):
            posting = self.postings.get(term)
            if posting is None:
                weights.append(self.unknown_idf)
                continue
            weights.append(self.idf[term])
            total[posting[0]] += posting[1]
        # A long, chatty question is judged on its most telling words only.
        denom = sum(sorted(weights, reverse=True)[:DENOM_TERMS])
        if denom <= 0:
            return total
        return np.minimum(total / denom, 1.0)


class Matcher:
    """Ranked, scored candidates for a question over one knowledge base."""

    def __init__(self, kb: KnowledgeBase, analyzer: Analyzer | None = None) -> None:
        self.kb = kb
        # Program names say which entries apply, not what the question is about:
        # the policy filters on them, so they are left out of the scores.
        ignore = [
            c for p in kb.programs.values() for c in (*p.cues, *p.content_cues, *p.year_cues, *p.reply_cues)
        ] + list(kb.ignore_phrases)
        self.analyzer = analyzer or Analyzer(kb.synonyms, ignore=ignore)
        self.entries: tuple[Entry, ...] = kb.entries
        variant_entry: list[int] = []
        variant_text: list[str] = []
        word_docs: list[tuple[str, ...]] = []
        bigram_docs: list[tuple[str, ...]] = []
        answer_docs: list[tuple[str, ...]] = []
        pooled_docs: list[tuple[str, ...]] = []
        self._entry_terms: list[set[str]] = []
        self._entry_variants: list[range] = []
        for idx, entry in enumerate(self.entries):
            seen: set[str] = set()
            first = len(variant_entry)
            for text in (entry.question, *entry.paraphrases):
                analysis = self.analyzer.analyze(text)
                variant_entry.append(idx)
                variant_text.append(analysis.normalized)
                word_docs.append(analysis.terms)
                bigram_docs.append(analysis.bigrams)
                seen.update(analysis.terms)
            pooled_docs.append(tuple(t for i in range(first, len(variant_entry)) for t in word_docs[i]))
            answer = self.analyzer.analyze(entry.answer) if entry.answer else None
            answer_docs.append(answer.terms if answer else ())
            if answer:
                seen.update(answer.terms)
            self._entry_terms.append(seen)
            self._entry_variants.append(range(first, len(variant_entry)))
        self._variant_entry = np.array(variant_entry, dtype=np.int64)
        self._variant_text = variant_text
        self._words = _Field(word_docs)
        self._readings = _Field(bigram_docs)
        self._answers = _Field(answer_docs)
        self._pooled = _Field(pooled_docs)
        self._vocab_by_len: dict[int, list[str]] = {}
        for word in sorted(set(self._words.idf) | set(self._answers.idf)):
            self._vocab_by_len.setdefault(len(word), []).append(word)
        self._entry_index = {e.id: i for i, e in enumerate(self.entries)}

    def _correct_typos(self, analysis: Analysis) -> list[str]:
        """Replace unseen words by a close known word (rapidfuzz), keep the rest."""
        terms = []
        for term in analysis.terms:
            if term in self._words.idf or term in self._answers.idf or len(term) < TYPO_MIN_LEN:
                terms.append(term)
                continue
            # A ratio of 80 needs lengths within a quarter of each other: compare only those.
            near = [w for n in range(len(term) - 1, len(term) + 2) for w in self._vocab_by_len.get(n, ())]
            best = process.extractOne(term, near, scorer=fuzz.ratio, score_cutoff=TYPO_CUTOFF)
            terms.append(best[0] if best else term)
        return terms

    def _per_entry(self, variant_scores: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.zeros(len(self.entries))
        np.maximum.at(out, self._variant_entry, variant_scores)
        return out

    def unknown_share(self, analysis: Analysis) -> float:
        """Share of the question's words that no entry contains anywhere.

        A question about something else (ゲームのログインボーナス, Netflixの解約) shares one
        domain word with the knowledge base but brings words it has never seen.
        """
        terms = {t for t in analysis.terms if not t.startswith(READING_MARK)}
        if not terms:
            return 0.0
        return sum(1 for t in terms if t not in self._words.idf and t not in self._answers.idf) / len(terms)

    def rank(
        self,
        query: str,
        *,
        programs: set[str] | None = None,
        k: int = 10,
        analysis: Analysis | None = None,
    ) -> list[Candidate]:
        """Best entries first.  `programs` keeps only entries of those programs."""
        if not self.entries:
            return []
        analysis = analysis or self.analyzer.analyze(query)
        if not analysis.terms and not analysis.bigrams:
            return []
        terms = self._correct_typos(analysis)
        words = np.maximum(self._per_entry(self._words.scores(terms)), POOLED * self._pooled.scores(terms))
        readings = self._per_entry(self._readings.scores(analysis.bigrams))
        answers = self._answers.scores(terms)
        base = (WEIGHTS["words"] * words + WEIGHTS["reading"] * readings + WEIGHTS["answer"] * answers) / (
            1 - WEIGHTS["fuzzy"]
        )
        if programs is not None:
            allowed = np.array([e.program in programs for e in self.entries])
            base = np.where(allowed, base, -1.0)
        top = np.argsort(-base, kind="stable")[: max(RERANK, k)]
        top = top[base[top] > 0]
        if not len(top):
            return []
        fuzzy = self._fuzzy(analysis.normalized, top)
        final = (1 - WEIGHTS["fuzzy"]) * base[top] + WEIGHTS["fuzzy"] * fuzzy
        order = np.argsort(-final, kind="stable")[:k]
        candidates = []
        for pos in order:
            idx = int(top[pos])
            features = {
                "words": float(words[idx]),
                "reading": float(readings[idx]),
                "answer": float(answers[idx]),
                "fuzzy": float(fuzzy[pos]),
            }
            matched = tuple(t for t in dict.fromkeys(terms) if t in self._entry_terms[idx])
            candidates.append(Candidate(self.entries[idx], float(final[pos]), matched, features))
        return candidates

    def _fuzzy(self, query: str, entry_idx: NDArray[np.int64]) -> NDArray[np.float64]:
        """Best rapidfuzz ratio between the query and each given entry's wordings, in [0, 1]."""
        spans = [self._entry_variants[i] for i in entry_idx]
        texts = [self._variant_text[v] for span in spans for v in span]
        ratios = process.cdist([query], texts, scorer=fuzz.ratio, dtype=np.float64)[0]
        out = np.zeros(len(spans))
        start = 0
        for pos, span in enumerate(spans):
            out[pos] = ratios[start : start + len(span)].max(initial=0.0)
            start += len(span)
        return out / 100.0
