"""One place that turns ranked candidates into what the bot does.

The matcher only scores; this module decides between answering, asking back,
admitting "not found", small talk and starting a guided calculation, so the
trade-off between a confident wrong answer and an honest "not found" is made
here, with thresholds from one data file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from faq.loader import DATA_DIR, KBError, KnowledgeBase, Problem
from faq.matcher import Candidate, Matcher, Query
from faq.models import Entry, FlowId, OtherProgram
from faq.programs import name_phone_lines, name_program_years, programs_in_question
from faq.text import normalize

Status = Literal["answered", "clarify", "no_match", "smalltalk", "dialog"]


class PolicyConfig(BaseModel):
    """The decision's settings (faq/data/policy.toml explains each and how it was fitted)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    coverage_min: float
    lead_min: float
    apart_min: float
    vocabulary_min: float
    clarify_max: int
    suggest_min: float

    @model_validator(mode="after")
    def _suggest_below_answer(self) -> PolicyConfig:
        if not 0 <= self.suggest_min <= self.coverage_min:
            raise ValueError(
                "suggest_min must be between 0 and coverage_min: suggestions are what falls short of an answer"
            )
        return self

    @classmethod
    def load(cls, path: Path = DATA_DIR / "policy.toml") -> PolicyConfig:
        try:
            with path.open("rb") as fh:
                return cls.model_validate(tomllib.load(fh))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise KBError([Problem(str(path), None, None, str(exc))]) from None
        except ValidationError as exc:
            raise KBError(
                [Problem(str(path), None, ".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
            ) from None


def confidence(coverage: float, lead: float, lead_min: float) -> float:
    """How sure the decision is, in [0, 1]: the top entry's coverage, scaled down while its lead is short.

    Grows with coverage and with the lead, never with a smaller lead (tests/test_evaluation.py).
    """
    if lead_min <= 0:
        return max(0.0, min(1.0, coverage))
    return max(0.0, min(1.0, coverage)) * max(0.0, min(1.0, lead / lead_min))


def lead_of(top: float, second: float) -> float:
    """The top score's lead over the next one, as a share of the top score (scale-free across KBs)."""
    return (top - second) / top if top > 0 else 0.0


@dataclass(frozen=True)
class Choice:
    """Something the user can pick when asked back: an entry, or a program."""

    label: str
    entry_id: str | None = None
    program: str | None = None


@dataclass(frozen=True)
class Outcome:
    query: str
    status: Status
    candidates: tuple[Candidate, ...]
    entry: Entry | None = None
    # Every entry shown: one, or one per program side by side when the program is unknown and
    # both programs' documents answer with different rules.  `entry` is the first.
    answers: tuple[Entry, ...] = ()
    choices: tuple[Choice, ...] = ()
    dialog: FlowId | None = None
    program: str | None = None
    smalltalk: str | None = None
    confidence: float = 0.0
    reason: str = ""
    # Answered from one program's document while the program is unknown, and no entry of the
    # other covered program covers the question: the answer says so.
    other_silent: bool = False
    # The programs the question left possible without naming one (「令和元年度補正」 rules out 2023,
    # 「IT導入補助金2023」 rules out 2020): an answer says what else the words could mean, and a
    # "not found" gives their lines only, not a line the asker cannot be served by.
    within: tuple[str, ...] = ()
    # The programs and frames not covered here that the question names (their guides are shown).
    others: tuple[OtherProgram, ...] = ()
    # Not found, but these entries come near the question: offered under the honest "not found"
    # (one tap answers, where the bot could not be sure enough to answer by itself).
    suggestions: tuple[Choice, ...] = ()

    @property
    def narrowed(self) -> bool:
        """Answered from the one program the question left possible, which it did not name."""
        return self.status == "answered" and bool(self.within)


def _both_lines(first: Candidate, second: Candidate) -> bool:
    """Both entries say whom to call (topic `contact`): each program's line."""
    return first.entry.topic == second.entry.topic == "contact"


def _has_meaning(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


class Policy:
    """Decides the outcome for one question over one knowledge base."""

    def __init__(
        self,
        kb: KnowledgeBase,
        matcher: Matcher | None = None,
        config: PolicyConfig | None = None,
        *,
        use_foreign_list: bool = True,
    ):
        self.kb = kb
        # The hand list of other subsidies in catalog.toml is a supplement; refusal rests on
        # coverage, and `kounen eval --no-foreign-list` measures recall without the list.
        self.use_foreign_list = use_foreign_list
        self.matcher = matcher or Matcher(kb)
        self.config = config or PolicyConfig.load()
        # Programs and frames this knowledge base does not cover are out of scope like other subsidies.
        other_cues = [c for other in kb.other_programs for c in other.cues]
        self._foreign = tuple(normalize(c) for c in (*kb.foreign_cues, *other_cues))
        self._mixup = tuple(normalize(w) for w in kb.mixup_words)
        self._entry_text = {
            e.id: normalize(" ".join((e.question, *e.paraphrases, e.answer))) for e in kb.entries
        }
        intents = kb.intents
        self._smalltalk = (
            [(s.id, tuple(normalize(p) for p in s.patterns)) for s in intents.smalltalk] if intents else []
        )
        self._actions = tuple(normalize(a) for a in intents.dialog_actions) if intents else ()
        self._object_actions = tuple(normalize(a) for a in intents.dialog_object_actions) if intents else ()
        self._information = tuple(normalize(a) for a in intents.dialog_information) if intents else ()
        self._flows = (
            [(d.flow, tuple(normalize(t) for t in d.topics)) for d in intents.dialog] if intents else []
        )
        # Each flow's topic + object action phrases (人件費を計算), joined once rather than per question.
        self._direct = {
            flow: tuple(t + p + a for t in topics for p in ("", "を") for a in self._object_actions)
            for flow, topics in self._flows
        }

    # -- recognisers -------------------------------------------------------
    def detect_program(self, norm: str) -> str | None:
        return programs_in_question(self.kb, norm).program

    def detect_smalltalk(self, norm: str) -> str | None:
        bare = "".join(ch for ch in norm if ch.isalnum() or ch == " ").strip()
        for intent_id, patterns in self._smalltalk:
            for pattern in patterns:
                if bare == pattern or (bare.startswith(pattern) and len(bare) - len(pattern) <= 4):
                    return intent_id
        return None

    def detect_dialog(self, norm: str) -> FlowId | None:
        if any(w in norm for w in self._information):
            return None  # a way, a procedure or a formula: the FAQ answers it
        asked = any(a in norm for a in self._actions)
        best: tuple[int, FlowId] | None = None
        for flow, topics in self._flows:
            # A direct phrase holds a topic: without a topic word there is nothing to look for.
            hits = sum(1 for t in topics if t in norm)
            if not hits or not (asked or any(phrase in norm for phrase in self._direct[flow])):
                continue
            if best is None or hits > best[0]:
                best = (hits, flow)
        return best[1] if best else None

    def _foreign_cues(self, norm: str) -> list[str]:
        return [c for c in self._foreign if c in norm]

    # -- decision ------------------------------------------------------------
    def decide(self, query: str, program: str | None = None, k: int = 10) -> Outcome:
        """The outcome for one question; `program` is the program known from the conversation."""
        norm = normalize(query)
        if not _has_meaning(norm):
            return Outcome(query, "no_match", (), program=program, reason="empty")
        small = self.detect_smalltalk(norm)
        if small is not None:
            return Outcome(query, "smalltalk", (), program=program, smalltalk=small, reason="smalltalk")
        # 「2022年度のIT導入補助金」 names a program as 「IT導入補助金2022」 does, in the cues and in the
        # matching alike.
        norm = name_program_years(norm)
        mention = programs_in_question(self.kb, norm)
        program = program or mention.program
        # A question that rules the other programs out (「令和元年度補正」) is answered from the one
        # left, which is not remembered: the question did not name it.
        narrowed = set(mention.narrowed) if program is None and not mention.others else set()
        allowed = {program, "common"} if program else ({*narrowed, "common"} if narrowed else None)
        analysis = self.matcher.analyzer.analyze(
            name_phone_lines(norm, mention.quoted) if mention.by_phone else norm, negations=True
        )
        prepared = self.matcher.prepare(analysis)
        candidates = self.matcher.rank_prepared(prepared, programs=allowed, k=k)
        if prepared.span is not None:
            # An entry whose condition the stated span contradicts is not the answer, however
            # much it shares: 「2年目に解約」 is never the first-year cancellation.
            candidates = [c for c in candidates if _span_allows(prepared, c.entry)]
        flow = self.detect_dialog(norm)
        if flow is not None:
            return Outcome(
                query, "dialog", tuple(candidates), dialog=flow, program=program, reason="dialog request"
            )
        foreign = self._foreign_cues(norm) if self.use_foreign_list else []
        if foreign or mention.others:
            # A question naming another subsidy or frame is answered only by an entry that names it too.
            names = [
                *foreign,
                *(normalize(c) for o in mention.others for c in o.cues if normalize(c) in norm),
            ]
            candidates = [c for c in candidates if all(f in self._entry_text[c.entry.id] for f in names)]
            if not mention.programs and not any(w in norm for w in self._mixup):
                # 「IT導入補助金2021のマイページに入れない」 comes from a 2021 recipient: an entry that
                # names 2021 only to tell it apart from 2020 answers only a question about the mix-up.
                apart = {eid for o in mention.others for eid in o.told_apart_in}
                candidates = [c for c in candidates if c.entry.id not in apart]
            if not candidates:
                return Outcome(
                    query, "no_match", (), program=program, reason="another program", others=mention.others
                )
        outcome = self._from_candidates(
            query, tuple(candidates), program, known=program is not None or bool(narrowed), prepared=prepared
        )
        if narrowed:
            outcome = replace(outcome, within=tuple(sorted(narrowed)))
        if mention.others and outcome.status == "no_match":
            outcome = replace(outcome, others=mention.others)
        if outcome.status == "no_match" and program is not None and outcome.reason == "not covered":
            # The user's program is known and its document is silent: say so, never borrow the other's rule.
            elsewhere = self.matcher.rank_prepared(prepared, k=3)
            if any(
                self._covers(c, prepared) and c.entry.program not in (program, "common") for c in elsewhere
            ):
                return replace(outcome, reason="not in this program's document")
        return outcome

    def _covers(self, candidate: Candidate, prepared: Query | None) -> bool:
        """Whether `candidate` covers the question enough to answer it.

        A name the KB does not know (「e-Taxにログインできない」, 「マイナポータルに入れない」) is a
        thing none of its documents describes: the question is about it, however fully an entry
        covers its other words (ログイン of another portal's login).  Coverage weighs such a word
        the most but still averages it away beside a wording the rest says whole.  So no entry of
        either program covers it: a user whose program is known is not told that the other
        program's document does.
        """
        named_elsewhere = prepared is not None and bool(prepared.unknown_names)
        return candidate.coverage >= self.config.coverage_min and not named_elsewhere

    def _from_candidates(
        self,
        query: str,
        candidates: tuple[Candidate, ...],
        program: str | None,
        *,
        known: bool,
        prepared: Query | None = None,
    ) -> Outcome:
        cfg = self.config
        if not candidates or not self._covers(candidates[0], prepared):
            return Outcome(
                query,
                "no_match",
                candidates,
                program=program,
                reason="not covered",
                suggestions=self._suggestions(candidates, known=known),
            )
        top = candidates[0]
        covering = [c for c in candidates if c.coverage >= cfg.coverage_min]
        second = candidates[1].relevance if len(candidates) > 1 else 0.0
        # Entries too close to the top to tell apart, among those that cover the question.
        close = [
            c
            for c in covering
            # An entry that covers clearly less of the question than the top one (by `apart_min`)
            # can be told apart from it; one that covers nearly as much cannot.
            # (The question side only: siblings differ in how much of their wordings a short
            # question says, not in whether they are what it asks about.)
            if lead_of(top.relevance, c.relevance) < cfg.lead_min
            and c.question_coverage >= top.question_coverage - cfg.apart_min - 1e-9
            and not self._sibling(prepared, top, c)
        ]
        if prepared is not None and prepared.analysis.predicates and len(close) > 1:
            close = self._told_apart_by_what_is_said(prepared, close)
            if top not in close:
                top = close[0]
        # Entries too close to tell apart by relevance are told apart by coverage: the one that
        # covers the question and its own wording best leads.  A general question (「ツール 解約
        # 辞退届」) says a whole wording of the general entry; the partial cancellation ranks as
        # high on the same words but its wordings say what the question does not (一部, 複数).
        # (The ranking is left as the matcher made it: this is the policy's choice of answer.)
        best = max(close, key=lambda c: c.coverage)
        if best.coverage > top.coverage + 1e-9:
            top = best
        # The answer's own coverage; the lead is the ranking's, between its first two.
        conf = confidence(top.coverage, lead_of(candidates[0].relevance, second), cfg.lead_min)
        # A question using words of one program's document only (ナビダイヤル, 効果報告) is about
        # that program: no second program's answer beside it, unless that answer covers the
        # question as well (a word the documents merely phrase differently, like 扱い, names none).
        # Between two programs' lines, covering the rest is not enough: each program has its own
        # line, and a question about what only one of them has (the お問い合わせフォーム, ナビダイヤル,
        # the gBizID 窓口) asks for that one; the other line would be a number that cannot help.
        own_words = (
            self.matcher.one_program_words(prepared, self.matcher.position[top.entry.id])
            if prepared is not None
            else ()
        )
        # The program is open: unknown, and the top entry belongs to one.
        open_program = not known and top.entry.program != "common"
        pair = self._other_program(top, candidates, close, prepared) if open_program else ()
        if own_words and pair and (pair[0].coverage < cfg.coverage_min or _both_lines(top, pair[0])):
            pair = ()
        if pair and prepared is not None:
            # The question names one program by its own vocabulary (「効果報告のことで電話したい」):
            # that program's answer alone, whichever of the pair ranked first on the shared words.
            named = self.matcher.question_programs(prepared, cfg.vocabulary_min)
            if len(named) == 1:
                (program_named,) = named
                if top.entry.program == program_named:
                    pair = ()
                elif all(c.entry.program == program_named for c in pair):
                    return Outcome(
                        query,
                        "answered",
                        candidates,
                        entry=pair[0].entry,
                        answers=tuple(c.entry for c in pair),
                        confidence=conf,
                        reason="the question names the program",
                    )
        if pair:
            rest = [c for c in close if c.entry.program == top.entry.program and c is not top]
            if not rest:
                return Outcome(
                    query,
                    "answered",
                    candidates,
                    entry=top.entry,
                    answers=(top.entry, *(c.entry for c in pair)),
                    confidence=conf,
                    reason="both programs answer",
                )
        if pair or (open_program and not own_words):
            close = [c for c in close if c.entry.program == top.entry.program]
        if len(close) <= 1:
            silent = open_program and not any(
                c.entry.program not in (top.entry.program, "common") for c in covering
            )
            return Outcome(
                query,
                "answered",
                candidates,
                entry=top.entry,
                answers=(top.entry,),
                program=program,
                confidence=conf,
                reason="clear winner",
                other_silent=silent and len(self.kb.programs) > 1,
            )
        choices = tuple(
            Choice(c.entry.question, c.entry.id, c.entry.program) for c in close[: cfg.clarify_max]
        )
        return Outcome(
            query,
            "clarify",
            candidates,
            choices=choices,
            program=program,
            confidence=conf,
            reason="close candidates",
        )

    def _told_apart_by_what_is_said(self, prepared: Query, close: list[Candidate]) -> list[Candidate]:
        """The close entries left once the question's words about its nouns are read.

        Entries that share the question's nouns are told apart by what it says of them: of
        「申請マイページにログインできない」, the failed-login entry says 「ログインできません」 and the
        forgotten-ID entry 「IDがわかりません」.  Those saying most of the question's negated
        predicates stay; when all say as many, the predicate tells nothing and all stay.  Then by
        the kind of answer asked for: 「どんな場合に辞退届がいる？」 asks for the cases, and when an
        entry's wordings ask for them too, one whose wordings ask for the way is told apart.
        """
        position = self.matcher.position
        said = [len(self.matcher.predicates_said(prepared, position[c.entry.id])) for c in close]
        if min(said) < max(said):
            close = [c for c, n in zip(close, said, strict=True) if n == max(said)]
        keep = [c for c in close if not self.matcher.asks_otherwise(prepared, position[c.entry.id])]
        if any(self.matcher.asks_alike(prepared, position[c.entry.id]) for c in keep):
            return keep
        return close

    def _sibling(self, prepared: Query | None, top: Candidate, other: Candidate) -> bool:
        """Whether `other` covers less of the question than `top` only by saying a sibling of one
        of its words (IT導入支援事業者 for 補助事業者): told apart, whatever `apart_min` allows."""
        if prepared is None or other is top or other.question_coverage >= top.question_coverage - 1e-9:
            return False
        position = self.matcher.position
        return bool(self.matcher.sibling_words(prepared, position[top.entry.id], position[other.entry.id]))

    def _suggestions(self, candidates: Sequence[Candidate], *, known: bool = True) -> tuple[Choice, ...]:
        """The entries offered under a "not found": the best-ranked few that come near the question.

        Below `coverage_min` the bot is not sure enough to answer; from `suggest_min` an entry
        is still worth one tap (faq/data/policy.toml says how the bar was fitted).  While the
        program is unknown, offers of one program only make room for the other program's answer
        to the same question (`topic`), as an answer would be shown beside it: a 2023 user is
        not left with three 【2020】 questions.
        """
        cfg = self.config
        offered = [c for c in candidates[: cfg.clarify_max] if c.coverage >= cfg.suggest_min]
        programs = {c.entry.program for c in offered} - {"common"}
        if not known and len(programs) == 1 and len(set(self.kb.programs) - {"common"}) > 1:
            mate = next(
                (
                    other
                    for c in offered
                    if c.entry.topic is not None
                    for other in candidates
                    if other.entry.topic == c.entry.topic
                    and other.entry.program not in (programs | {"common"})
                ),
                None,
            )
            if mate is not None:
                offered = [*offered[: cfg.clarify_max - 1], mate]
        return tuple(Choice(c.entry.question, c.entry.id, c.entry.program) for c in offered)

    def _other_program(
        self,
        top: Candidate,
        candidates: Sequence[Candidate],
        close: Sequence[Candidate],
        prepared: Query | None = None,
    ) -> tuple[Candidate, ...]:
        """The other program's answers to show beside the top one, when the program is unknown.

        The knowledge base pairs entries that answer the same question for the two programs
        (`topic`; `beside` for an entry answered by a topic it does not answer for): the other
        program's entry of the top entry's topic is its answer, even when the question's details
        (「1年以上」) are in one program's document only.  Where the
        other program answers that topic by how long the tool was used (2020 FAQ 質問6 and 質問7:
        entries with `months`), each of those entries that the question's span leaves standing
        and that covers the question's words as well as the best-ranked one is shown beside it
        (its wordings need not say them: 質問6's do not say 辞退届, its answer does): a
        cancellation asked about without a duration is 「1年未満なら全額返還」 and 「1年以上なら
        状況による」, and one of them alone would be half the rule.  「全額返すの？」 too: to a
        fourth-year canceller, the first year's 「全額返還」 alone would be a wrong answer.
        Otherwise an entry of the other program is shown only when it covers the question and
        scores too close to the top to be told apart.
        """
        others = [c for c in candidates if c.entry.program not in (top.entry.program, "common")]
        topic = top.entry.topic or top.entry.beside
        if topic is not None:
            same = [c for c in others if c.entry.topic == topic]
            if not same and prepared is not None:
                # The pairing is the knowledge base's, not the ranking's: the other program's
                # answer to the same question is looked for beyond the first candidates, where
                # words of other entries (補助金, 返還) can push it (「半年で使うのやめたら補助金返還
                # になる？」 is a cancellation; the 2023 refund and penalty entries outrank its 2023
                # answer on the money words).
                same = [c for c in self._ranked_beyond(prepared, top) if c.entry.topic == topic]
            if same and same[0].entry.months is not None:
                first = same[0]
                by_span = [
                    c
                    for c in same
                    if c is first
                    or (
                        c.entry.months is not None
                        and c.entry.program == first.entry.program
                        # The question's words, as well as the first covers them: 「辞退届がいるのは
                        # どんなとき？」 is both spans' question, though only 質問7's wordings say 辞退届.
                        and c.question_coverage >= first.question_coverage - self.config.apart_min - 1e-9
                    )
                ]
                return tuple(sorted(by_span, key=_months_from))
            if same:
                return (same[0],)
        return tuple(c for c in others if c in close)[:1]

    def _ranked_beyond(self, prepared: Query, top: Candidate) -> list[Candidate]:
        """Every entry of the other programs that the question meets, best first, as `decide`
        keeps them (an entry whose span of months the question contradicts is left out)."""
        programs = set(self.kb.programs) - {top.entry.program, "common"}
        ranked = self.matcher.rank_prepared(prepared, programs=programs, k=len(self.kb.entries))
        return [c for c in ranked if _span_allows(prepared, c.entry)]


def _span_allows(prepared: Query, entry: Entry) -> bool:
    """False when the question's span of months contradicts the entry's condition."""
    span, months = prepared.span, entry.months
    return span is None or months is None or span.fits(months.min, months.below) is not False


def _months_from(candidate: Candidate) -> float:
    """Where an entry's span of months starts (0 for none): entries by span are shown in order."""
    months = candidate.entry.months
    return float(months.min or 0) if months is not None else 0.0


def top_ids(candidates: Sequence[Candidate], k: int) -> list[str]:
    return [c.entry.id for c in candidates[:k]]
